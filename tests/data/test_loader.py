"""The loader on the real published tables and on broken copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from recommender.data.loader import DataValidationError, load_table, load_tables
from recommender.data.schema import FILES
from tests.conftest import REAL_DATA


def test_real_course_tags_load_and_drop_empty_tags():
    frame, dropped, rows_read = load_table(REAL_DATA, "course_tags")
    assert rows_read == 11_337
    assert dropped["empty course_tags"] == 112
    # 112 of the 5,942 published courses have only the empty tag, so they leave the catalogue.
    assert frame["course_id"].nunique() == 5_942 - 112
    assert frame["course_tags"].nunique() == 996
    assert (frame["course_tags"] == frame["course_tags"].str.strip().str.lower()).all()
    assert not frame.duplicated().any()


def test_real_assessment_scores_load_with_types():
    frame, dropped, rows_read = load_table(REAL_DATA, "user_assessment_scores")
    assert rows_read == 6_571 and len(frame) == 6_571
    assert frame["user_handle"].nunique() == 3_114
    assert frame["assessment_tag"].nunique() == 54
    assert frame["user_handle"].dtype == "int64"
    assert pd.api.types.is_datetime64_any_dtype(frame["user_assessment_date"])
    assert frame["user_assessment_score"].between(0, 300).all()


def _copy(src: Path, dst: Path) -> Path:
    for name in FILES.values():
        shutil.copy(src / name, dst / name)
    return dst


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text)


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(DataValidationError, match=r"user_interests\.csv: file not found"):
        load_tables(tmp_path)


def test_missing_column_is_named(tmp_path: Path, small_dataset: Path):
    _copy(small_dataset, tmp_path)
    views = pd.read_csv(tmp_path / "user_course_views.csv").drop(columns=["level"])
    views.to_csv(tmp_path / "user_course_views.csv", index=False)
    with pytest.raises(DataValidationError) as info:
        load_tables(tmp_path)
    assert "user_course_views.csv: column 'level': required column missing" in str(info.value)


@pytest.mark.parametrize("bad", ["abc", "-3", "1.5", ""])
def test_unparseable_user_handle_names_file_column_row(tmp_path: Path, bad: str):
    _rewrite(tmp_path / "user_interests.csv", f"user_handle,interest_tag,date_followed\n1,java,2017-01-01\n{bad},python,2017-01-02\n")
    with pytest.raises(DataValidationError) as info:
        load_table(tmp_path, "user_interests")
    assert str(info.value).endswith(f"user_interests.csv: column 'user_handle', row 3: value {bad!r} is not a positive integer")


def test_unparseable_date_is_an_error(tmp_path: Path):
    _rewrite(tmp_path / "user_interests.csv", "user_handle,interest_tag,date_followed\n1,java,yesterday\n")
    with pytest.raises(DataValidationError, match=r"column 'date_followed', row 2"):
        load_table(tmp_path, "user_interests")


def test_views_drop_and_normalise(tmp_path: Path):
    _rewrite(
        tmp_path / "user_course_views.csv",
        "user_handle,view_date,course_id,author_handle,level,view_time_seconds\n"
        "1,2017-06-27,course-a,875,Beginner,3786\n"
        "1,2017-06-27,course-a,875,Beginner,3786\n"  # exact duplicate
        "1,2017-06-28,course-a,875, beginner ,1098\n"  # level normalised
        "2,2017-06-28,course-b,875,Expert,100\n"  # unknown level
        "3,2017-06-28,course-b,875,Advanced,0\n"  # non-positive view time
        "3,2017-06-28,course-c,875,Advanced,-5\n",
    )
    frame, dropped, rows_read = load_table(tmp_path, "user_course_views")
    assert rows_read == 6
    assert dropped == {"exact duplicate row": 1, "unknown level": 1, "non-positive view_time_seconds": 2}
    assert frame["level"].tolist() == ["Beginner", "Beginner"]


def test_non_numeric_view_time_is_an_error(tmp_path: Path):
    _rewrite(
        tmp_path / "user_course_views.csv",
        "user_handle,view_date,course_id,author_handle,level,view_time_seconds\n1,2017-06-27,a,1,Beginner,long\n",
    )
    with pytest.raises(DataValidationError, match=r"column 'view_time_seconds', row 2: value 'long' is not a number"):
        load_table(tmp_path, "user_course_views")


def test_interest_tags_lowercased_stripped_empty_dropped_duplicates_after_normalising(tmp_path: Path):
    _rewrite(
        tmp_path / "user_interests.csv",
        "user_handle,interest_tag,date_followed\n"
        "1, C# ,2017-01-01\n"
        "1,c#,2017-01-01\n"
        "1,,2017-01-01\n"
        "2,Node.js,2017-01-02 10:00:00\n",
    )
    frame, dropped, _ = load_table(tmp_path, "user_interests")
    assert frame["interest_tag"].tolist() == ["c#", "node.js"]
    assert dropped == {"empty interest_tag": 1, "exact duplicate row": 1}


def test_not_a_csv(tmp_path: Path):
    (tmp_path / "course_tags.csv").write_bytes(b"")
    with pytest.raises(DataValidationError, match="course_tags.csv: file is empty"):
        load_table(tmp_path, "course_tags")


def test_only_requested_tables_are_read(tmp_path: Path, small_dataset: Path):
    shutil.copy(small_dataset / "user_interests.csv", tmp_path / "user_interests.csv")
    tables = load_tables(tmp_path, ("user_interests",))
    assert len(tables.user_interests) > 0 and tables.user_course_views.empty
