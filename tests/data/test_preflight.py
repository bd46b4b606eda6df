"""Usage and environment mistakes are found before any work, each named in one line.

Permissions are tested for real, as an unprivileged user (``tests/data/conftest.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.data.preflight import UsageError, check_data_dir, check_output_path
from recommender.data.schema import FILES
from tests.conftest import ROOT
from tests.data.conftest import unprivileged_prefix

ALL = tuple(FILES)


def _tables(folder: Path) -> Path:
    for name in FILES.values():
        (folder / name).write_text("x\n1\n")
        (folder / name).chmod(0o644)
    return folder


@pytest.mark.parametrize("url", ["s3://", "s3:///nightly", "s3:///"])
def test_s3_url_without_bucket(url: str):
    with pytest.raises(UsageError, match=r"no bucket in the S3 URL \(expected s3://bucket/prefix\)$"):
        check_data_dir(url, ALL)


def test_s3_url_with_bucket_is_not_fetched_here():
    check_data_dir("s3://exports/nightly", ALL)  # no network, no credentials: only the shape


def test_data_folder_missing_or_a_file(tmp_path: Path):
    with pytest.raises(UsageError, match=r"nowhere: data folder not found$"):
        check_data_dir(tmp_path / "nowhere", ALL)
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match=r"file: not a directory"):
        check_data_dir(tmp_path / "file", ALL)


def test_table_missing_or_a_directory_only_for_the_tables_asked(tmp_path: Path):
    _tables(tmp_path)
    (tmp_path / "user_interests.csv").unlink()
    (tmp_path / "user_interests.csv").mkdir()
    check_data_dir(tmp_path, ("course_tags", "user_course_views"))
    with pytest.raises(UsageError, match=r"user_interests\.csv: is a directory$"):
        check_data_dir(tmp_path, ALL)
    (tmp_path / "course_tags.csv").unlink()
    with pytest.raises(UsageError, match=r"course_tags\.csv: file not found$"):
        check_data_dir(tmp_path, ("course_tags",))


def test_unreadable_table_is_permission_denied(tmp_path: Path, raised_unprivileged):
    _tables(tmp_path)
    (tmp_path / "user_course_views.csv").chmod(0o000)
    code = f"from recommender.data.preflight import check_data_dir\ncheck_data_dir({str(tmp_path)!r}, {ALL!r})"
    assert raised_unprivileged(code) == \
        f"recommender.data.preflight.UsageError: {tmp_path / 'user_course_views.csv'}: permission denied"


def test_output_path_that_is_a_directory_or_under_a_file(tmp_path: Path):
    with pytest.raises(UsageError, match=r"^--dry-run .*: is a directory \(give a file name\)$"):
        check_output_path(tmp_path, "--dry-run")
    (tmp_path / "plain").write_text("")
    with pytest.raises(UsageError, match=r"^--report .*out\.json: .*plain is not a directory$"):
        check_output_path(tmp_path / "plain" / "out.json", "--report")


def test_output_path_ok_creates_the_folder_and_leaves_nothing(tmp_path: Path):
    target = tmp_path / "new" / "deeper" / "items.jsonl"
    check_output_path(target, "--dry-run")
    assert target.parent.is_dir() and list(target.parent.iterdir()) == []
    check_output_path(None, "--report")


def test_output_in_a_folder_without_write_permission(tmp_path: Path, raised_unprivileged):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    code = (f"from pathlib import Path\nfrom recommender.data.preflight import check_output_path\n"
            f"check_output_path(Path({str(locked / 'items.jsonl')!r}), '--dry-run')")
    assert raised_unprivileged(code) == \
        f"recommender.data.preflight.UsageError: --dry-run {locked / 'items.jsonl'}: permission denied"


def test_generator_with_an_unreadable_table_exits_2_before_loading(tmp_path: Path, small_dataset: Path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    for name in FILES.values():
        shutil.copy(small_dataset / name, data / name)
        (data / name).chmod(0o644)
    (data / "user_interests.csv").chmod(0o000)
    env = {**os.environ, "LOG_LEVEL": "INFO", "HOME": str(tmp_path)}
    result = subprocess.run(
        [*unprivileged_prefix(), sys.executable, "run_generator.py", "--no-progress", "--data-dir", str(data),
         "--dry-run", str(tmp_path / "out" / "items.jsonl")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {data / 'user_interests.csv'}: permission denied"]
