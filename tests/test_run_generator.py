"""The generator's command line: lock refusal, run summary file, exit codes, signals, coverage guard."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from recommender.store.dynamo import DynamoStore
from recommender.store.publisher import RunPublisher
from tests.conftest import ROOT

pytestmark = pytest.mark.dynamodb


def generator_env(settings, tmp_path) -> dict[str, str]:
    return {**os.environ, "DYNAMODB_ENDPOINT_URL": settings.dynamodb_endpoint_url, "DYNAMODB_TABLE": settings.dynamodb_table,
            "RUN_REPORT_DIR": str(tmp_path / "reports"), "LOG_LEVEL": "INFO"}


def generate(settings, data_dir, tmp_path, *extra: str, models: str = "tfidf_user_interest") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "run_generator.py", "--no-progress", "--data-dir", str(data_dir), "--models", models, *extra],
        cwd=ROOT, env=generator_env(settings, tmp_path), capture_output=True, text=True, timeout=300,
    )


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_second_generator_refuses_with_exit_3_while_one_runs(local_settings, small_dataset, tmp_path):
    holder = RunPublisher(DynamoStore.for_generator(local_settings), lease_seconds=60)
    holder.begin("20260101T000000Z-holder00", ("tfidf_user_interest",))
    try:
        result = generate(local_settings, small_dataset, tmp_path)
    finally:
        holder.abort()
        holder.release_lock()
    assert result.returncode == 3
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: another generator run (20260101T000000Z-holder00 on ") and "holds the lock" in last
    assert generate(local_settings, small_dataset, tmp_path).returncode == 0  # free again


def test_each_run_leaves_a_machine_readable_summary(local_settings, small_dataset, tmp_path):
    result = generate(local_settings, small_dataset, tmp_path)
    assert result.returncode == 0, result.stderr
    (report_file,) = (tmp_path / "reports").glob("*.json")
    report = json.loads(report_file.read_text())
    assert report_file.stem == report["run_id"]
    assert report["rows_read"]["user_interests"] > report["rows_read"]["user_interests"] - sum(report["dropped"]["user_interests"].values()) > 0
    (model,) = report["models"]
    assert model["handle"] == "tfidf_user_interest" and model["items_written"] == model["users_covered"] == 600
    assert {"load_seconds", "publish_seconds", "total_seconds"} <= report.keys()
    assert f"run {report['run_id']} done" in result.stderr
    # The same summary is kept with the run in the control table.
    runs = DynamoStore.for_generator(local_settings).query_control("run")
    assert json.loads(runs[0]["summary"])["run_id"] == report["run_id"]


KNN = "knn_collab_filtering_user_course_view"


def copy_with_views(src: Path, dst: Path, edit) -> Path:
    """A copy of the dataset whose views table went through ``edit`` (a pandas frame → frame)."""
    dst.mkdir()
    for name in ("user_interests.csv", "user_assessment_scores.csv", "course_tags.csv"):
        shutil.copy(src / name, dst / name)
    edit(pd.read_csv(src / "user_course_views.csv")).to_csv(dst / "user_course_views.csv", index=False)
    return dst


def published_items(settings, model: str) -> int | None:
    pointer = DynamoStore.for_generator(settings).pointer(model, fresh=True)
    return pointer.items if pointer else None


def test_an_export_whose_rows_are_all_dropped_never_replaces_a_good_run(local_settings, small_dataset, tmp_path):
    assert generate(local_settings, small_dataset, tmp_path, models=KNN).returncode == 0
    good = published_items(local_settings, KNN)
    zeros = copy_with_views(small_dataset, tmp_path / "zeros", lambda f: f.assign(view_time_seconds=0))
    result = generate(local_settings, zeros, tmp_path, models=KNN)
    assert result.returncode == 2
    assert last_line(result).startswith(f"error: model {KNN} covers no user: user_course_views has no usable rows (")
    assert "non-positive view_time_seconds" in last_line(result)
    assert published_items(local_settings, KNN) == good  # the previous run keeps serving


def test_a_model_that_lost_most_of_its_users_is_refused_unless_forced(local_settings, small_dataset, tmp_path):
    assert generate(local_settings, small_dataset, tmp_path, models=KNN).returncode == 0
    good = published_items(local_settings, KNN)
    few = copy_with_views(small_dataset, tmp_path / "few", lambda f: f[f["user_handle"] % 10 == 0])
    result = generate(local_settings, few, tmp_path, models=KNN)
    assert result.returncode == 2, result.stderr
    line = last_line(result)
    assert line.startswith(f"error: model {KNN} covers ") and f"(before: {good:,}, after: " in line and "--force" in line
    assert published_items(local_settings, KNN) == good
    forced = generate(local_settings, few, tmp_path, "--force", models=KNN)
    assert forced.returncode == 0, forced.stderr
    assert published_items(local_settings, KNN) < good * 0.5


def test_sigterm_ends_like_sigint_run_failed_table_dropped_lock_released(local_settings, small_dataset, tmp_path):
    store = DynamoStore.for_generator(local_settings)
    proc = subprocess.Popen(
        [sys.executable, "run_generator.py", "--no-progress", "--data-dir", str(small_dataset)],  # all models: the DNN takes seconds
        cwd=ROOT, env=generator_env(local_settings, tmp_path), stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if [r for r in store.query_control("run") if r["status"] == "writing"]:
                    break
            except Exception:  # noqa: BLE001 - the control table is created by the run itself
                pass
            time.sleep(0.1)
        assert proc.poll() is None, "the generator finished before it could be terminated"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "error: terminated (SIGTERM); the run was not published"
    (run,) = store.query_control("run")
    assert run["status"] == "failed"
    assert store.run_table(run["sk"]) not in store.client.list_tables()["TableNames"]
    assert not store.client.get_item(TableName=store.control_table, Key={"pk": {"S": "lock"}, "sk": {"S": "generator"}}).get("Item")
    assert generate(local_settings, small_dataset, tmp_path).returncode == 0  # no lease to wait for


# --- Usage errors before any work, bad values never published (issue 7 C, issue 11.4) -----------

def dry_run(data_dir, tmp_path, *extra: str, env: dict[str, str] | None = None,
            models: str = "tfidf_user_interest") -> subprocess.CompletedProcess:
    """The generator with --dry-run (no database): what an operator trying a broken export sees."""
    args = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return subprocess.run(
        [sys.executable, "run_generator.py", "--no-progress", "--models", models, *args, *extra],
        cwd=ROOT, env={**os.environ, "RUN_REPORT_DIR": str(tmp_path / "reports"), "LOG_LEVEL": "INFO", **(env or {})},
        capture_output=True, text=True, timeout=300,
    )


def nothing_done(result: subprocess.CompletedProcess) -> bool:
    """No table was loaded and no model ran (the loader logs "read N rows" per table)."""
    return "rows, kept" not in result.stderr and "users covered" not in result.stderr


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_dry_run_into_a_directory_is_refused_before_any_work(small_dataset, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = dry_run(small_dataset, tmp_path, "--dry-run", str(out))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: --dry-run {out}: is a directory (give a file name)"]
    assert nothing_done(result)


def test_report_into_a_directory_is_refused_before_any_work(small_dataset, tmp_path):
    result = dry_run(small_dataset, tmp_path, "--dry-run", str(tmp_path / "items.jsonl"), "--report", str(tmp_path))
    assert result.returncode == 2
    assert last_line(result) == f"error: --report {tmp_path}: is a directory (give a file name)" and nothing_done(result)


def test_data_dir_s3_without_bucket_is_a_usage_error(tmp_path):
    result = dry_run(None, tmp_path, "--dry-run", str(tmp_path / "items.jsonl"), env={"DATA_DIR": "s3://"})
    assert result.returncode == 2
    assert last_line(result) == "error: DATA_DIR / --data-dir 's3://': no bucket in the S3 URL (expected s3://bucket/prefix)"
    assert nothing_done(result)


def test_directory_named_like_a_table_is_a_usage_error(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    (data / "user_interests.csv").unlink()
    (data / "user_interests.csv").mkdir()
    result = dry_run(data, tmp_path, "--dry-run", str(tmp_path / "items.jsonl"))
    assert result.returncode == 2
    assert last_line(result) == f"error: {data / 'user_interests.csv'}: is a directory" and nothing_done(result)


@pytest.mark.parametrize(("row", "message"), [
    ("1180591620717411303424,python,2017-01-02",
     "column 'user_handle', row {line}: value '1180591620717411303424' is above the largest user handle, 9223372036854775807"),
    ("12.5,python,2017-01-02", "column 'user_handle', row {line}: value '12.5' is not a positive integer"),
    ("7,python,2999-01-01", "column 'date_followed', row {line}: value '2999-01-01' is not between 1970-01-01 and one day after the run ("),
    (f"7,{'x' * 10_000},2017-01-02", "column 'interest_tag', row {line}: value 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... "
                                     "(10,000 characters) is longer than 200 characters"),
])
def test_bad_value_stops_the_run_with_one_line_and_publishes_nothing(small_dataset, tmp_path, row, message):
    data = copy_dataset(small_dataset, tmp_path / "data")
    interests = data / "user_interests.csv"
    line = len(interests.read_text().splitlines()) + 1
    with interests.open("a") as handle:
        handle.write(row + "\n")
    out = tmp_path / "items.jsonl"
    result = dry_run(data, tmp_path, "--dry-run", str(out))
    assert result.returncode == 2, result.stderr[-2000:]
    assert last_line(result).startswith(f"error: {interests}: " + message.format(line=line))
    assert not out.exists()


def test_a_date_with_an_offset_among_plain_dates_is_read_as_utc(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    with (data / "user_interests.csv").open("a") as handle:
        handle.write("7,python,2017-07-31T10:00:00Z\n7,sql,2017-07-31T12:00:00+02:00\n")
    out = tmp_path / "items.jsonl"
    result = dry_run(data, tmp_path, "--dry-run", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(out.read_text().splitlines()) == 600


def test_header_only_table_is_one_clear_line(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    (data / "user_interests.csv").write_text("user_handle,interest_tag,date_followed\n")
    result = dry_run(data, tmp_path, "--dry-run", str(tmp_path / "items.jsonl"))
    assert result.returncode == 2
    assert last_line(result) == f"error: {data / 'user_interests.csv'}: no data rows"


def test_inf_view_time_stops_the_run_with_exit_2(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    views = data / "user_course_views.csv"
    text = views.read_text().splitlines()
    text[5] = ",".join(text[5].split(",")[:-1] + ["inf"])
    views.write_text("\n".join(text) + "\n")
    result = dry_run(data, tmp_path, "--dry-run", str(tmp_path / "items.jsonl"), models=KNN)
    assert result.returncode == 2, result.stderr[-2000:]
    assert last_line(result) == f"error: {views}: column 'view_time_seconds', row 6: value 'inf' is not a finite number"
