"""The loader (pyarrow reads and types every column) against pandas reading and parsing the same files.

The reference is the plain pandas way: ``read_csv`` gives every cell as a string, and
``to_numeric``/``to_datetime`` parse them; then the documented rules drop rows.  On valid
tables (clean, untidy, large with duplicates) both must give identical frames, dtypes included,
and the same counts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.data import loader
from recommender.data.schema import COLUMNS, FILES, LEVELS, MAX_VIEW_TIME_SECONDS

_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)
_HANDLES = ("user_handle",)
_DATES = ("date_followed", "view_date", "user_assessment_date")
_NUMBERS = ("view_time_seconds", "user_assessment_score")
_TAGS = ("interest_tag", "assessment_tag", "course_tags")
_REQUIRED = {"user_interests": ("interest_tag",), "user_course_views": ("course_id",),
             "user_assessment_scores": ("assessment_tag",), "course_tags": ("course_id", "course_tags")}


def _reference(folder: Path, name: str) -> tuple[pd.DataFrame, dict[str, int], int]:
    frame = pd.read_csv(folder / FILES[name], dtype=str, keep_default_na=False, na_values=[])
    frame.columns = [c.strip() for c in frame.columns]
    frame = frame[list(COLUMNS[name])].astype(_TEXT)
    for column in frame.columns:
        text = frame[column].str.strip()
        if column in _HANDLES:
            frame[column] = text.str.replace(r"^\+|\.0+$", "", regex=True).astype(object).map(int).astype(np.int64)
        elif column in _DATES:
            frame[column] = pd.to_datetime(text, format="ISO8601", utc=True).dt.tz_localize(None).astype("datetime64[us]")
        elif column in _NUMBERS:
            frame[column] = pd.to_numeric(text).astype(np.float64)
        else:
            frame[column] = text.str.lower() if column in _TAGS else text.str.capitalize() if column == "level" else text
    reasons = [(frame[c].eq(""), f"empty {c}") for c in _REQUIRED[name]]
    if name == "user_course_views":
        reasons += [(~frame["view_time_seconds"].gt(0), "non-positive view_time_seconds"),
                    (frame["view_time_seconds"].gt(MAX_VIEW_TIME_SECONDS), f"view_time_seconds over {MAX_VIEW_TIME_SECONDS:,.0f} (one day)"),
                    (~frame["level"].isin(LEVELS), "unknown level")]
    dropped, gone = {}, pd.Series(False, index=frame.index)
    for mask, reason in reasons:  # a row counts under the first reason that drops it
        if (mask & ~gone).any():
            dropped[reason] = int((mask & ~gone).sum())
        gone |= mask
    kept = frame[~gone]
    duplicates = kept.duplicated()
    if duplicates.any():
        dropped["exact duplicate row"] = int(duplicates.sum())
    return kept[~duplicates].reset_index(drop=True), dropped, len(frame)


def _assert_same(folder: Path, names: tuple[str, ...] = tuple(FILES)) -> loader.Tables:
    tables = loader.load_tables(folder, names)
    for name in names:
        frame, dropped, rows_read = _reference(folder, name)
        loaded = getattr(tables, name)
        assert [repr(t) for t in loaded.dtypes] == [repr(t) for t in frame.dtypes], name
        pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
        assert (tables.dropped[name], tables.rows_read[name]) == (dropped, rows_read), name
    return tables


def test_synthetic_tables_are_pandas_own(small_dataset: Path):
    _assert_same(small_dataset)


def test_untidy_tables_are_pandas_own(tmp_path: Path, small_dataset: Path):
    # Upper-case and padded text, duplicates, dropped rows, dates with "T" and offsets, quoted
    # fields, handles as "+7" and "12.0", a row without its last fields.
    for name in FILES.values():
        shutil.copy(small_dataset / name, tmp_path / name)
    views = tmp_path / FILES["user_course_views"]
    lines = views.read_text().splitlines()
    extra = [lines[1], lines[2].replace(",Beginner,", ", beginner ,"), "7,2017-06-27T10:00:00,\"a,b\",1,Expert,30",
             "7,2017-06-28,x,1,Beginner,0", "7,2017-06-28,y, 2 ,Advanced,100000", "8,2017-06-28,z,3,Advanced,12.5",
             "+9,2017-06-28T10:00:00+02:00,z,3,Advanced,1e2", "12.0,2017-06-28 10:00:00Z,z,3,advanced, 7 "]
    views.write_text("\n".join(lines + extra) + "\n")
    interests = tmp_path / FILES["user_interests"]
    interests.write_text(interests.read_text() + "9, Java ,2017-01-01\n9,java,2017-01-01\n9,,2017-01-01\n")
    tags = tmp_path / FILES["course_tags"]
    tags.write_text(tags.read_text() + '"course-without-tags"\n')
    tables = _assert_same(tmp_path)
    assert tables.dropped["user_course_views"] and tables.dropped["user_interests"]
    assert tables.dropped["course_tags"]["empty course_tags"] == 113  # the short row's missing tag is empty


def test_large_table_with_duplicates_is_pandas_own(tmp_path: Path):
    # Above the size where duplicates are pre-filtered by hashing, with a few dropped rows.
    rows = [f"{i % 5_000 + 1},tag{i % 7},2017-01-{i % 28 + 1:02d} 10:00:00" for i in range(150_000)]
    rows[::1_000] = [f"{i + 1},,2017-01-01" for i in range(150)]
    (tmp_path / FILES["user_interests"]).write_text("user_handle,interest_tag,date_followed\n" + "\n".join(rows) + "\n")
    tables = _assert_same(tmp_path, ("user_interests",))
    assert tables.dropped["user_interests"]["empty interest_tag"] == 150
    assert tables.dropped["user_interests"]["exact duplicate row"] > 100_000  # 35,000 distinct rows at most


@pytest.mark.parametrize("value", ["2019-07-31", "2019-07-31 23:59:59", "2019-07-31T10:00", "2019-07-31T10",
                                   "2000-02-29", "2019-07-31 10:00:00.123456", "2019-07-31T10:00:00Z",
                                   "2019-07-31T12:00:00+02:00", "2019-07-31T05:30:00-0430", "2019-07-31T12:00:00+02"])
def test_every_documented_date_form_is_read_as_pandas_reads_it(tmp_path: Path, value: str):
    (tmp_path / FILES["user_interests"]).write_text(f"user_handle,interest_tag,date_followed\n1,java,2017-01-01\n2,java,{value}\n")
    _assert_same(tmp_path, ("user_interests",))
