"""The fast path (pyarrow reader, vectorised columns) and the careful path give the same tables.

The careful path is the loader as it was before pyarrow: pandas reads every cell, and
``to_numeric``/``to_datetime`` parse them.  Switching the fast path off (each fast function
answering "cannot decide") runs exactly that code, so the two results must be identical.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from recommender.data import fast_columns, loader
from recommender.data.schema import FILES


def _careful_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "read_strings", lambda *args: None)
    for name in ("positive_handles", "plain_numbers", "utc_dates"):
        monkeypatch.setattr(fast_columns, name, lambda *args: None)
    monkeypatch.setattr(loader, "duplicated", lambda frame: frame.duplicated().to_numpy())
    monkeypatch.setattr(loader, "keep_rows", lambda frame, keep: frame.loc[keep])


def _assert_same(fast: loader.Tables, careful: loader.Tables) -> None:
    for name in FILES:
        a, b = getattr(fast, name), getattr(careful, name)
        assert [repr(t) for t in a.dtypes] == [repr(t) for t in b.dtypes], name
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert fast.dropped == careful.dropped and fast.rows_read == careful.rows_read


def test_synthetic_tables_are_the_same_either_way(small_dataset: Path, monkeypatch: pytest.MonkeyPatch):
    fast = loader.load_tables(small_dataset)
    _careful_only(monkeypatch)
    _assert_same(fast, loader.load_tables(small_dataset))


def test_untidy_tables_are_the_same_either_way(tmp_path: Path, small_dataset: Path, monkeypatch: pytest.MonkeyPatch):
    # Upper-case and padded text, duplicates, dropped rows, dates with "T", quoted fields: every
    # fast step is taken or declines on some column, and the answers must not change.
    for name in FILES.values():
        shutil.copy(small_dataset / name, tmp_path / name)
    views = tmp_path / FILES["user_course_views"]
    lines = views.read_text().splitlines()
    extra = [lines[1], lines[2].replace(",Beginner,", ", beginner ,"), "7,2017-06-27T10:00:00,\"a,b\",1,Expert,30",
             "7,2017-06-28,x,1,Beginner,0", "7,2017-06-28,y, 2 ,Advanced,100000", "8,2017-06-28,z,3,Advanced,12.5"]
    views.write_text("\n".join(lines + extra) + "\n")
    interests = tmp_path / FILES["user_interests"]
    interests.write_text(interests.read_text() + "9, Java ,2017-01-01\n9,java,2017-01-01\n9,,2017-01-01\n")
    fast = loader.load_tables(tmp_path)
    assert fast.dropped["user_course_views"] and fast.dropped["user_interests"]
    _careful_only(monkeypatch)
    _assert_same(fast, loader.load_tables(tmp_path))


def test_large_table_with_duplicates_is_the_same_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Above the size where duplicates are pre-filtered by hashing, with a few dropped rows.
    rows = [f"{i % 5_000 + 1},tag{i % 7},2017-01-{i % 28 + 1:02d} 10:00:00" for i in range(150_000)]
    rows[::1_000] = [f"{i + 1},,2017-01-01" for i in range(150)]
    (tmp_path / FILES["user_interests"]).write_text("user_handle,interest_tag,date_followed\n" + "\n".join(rows) + "\n")
    fast = loader.load_tables(tmp_path, ("user_interests",))
    assert fast.dropped["user_interests"]["empty interest_tag"] == 150
    assert fast.dropped["user_interests"]["exact duplicate row"] > 100_000  # 35,000 distinct rows at most
    _careful_only(monkeypatch)
    _assert_same(fast, loader.load_tables(tmp_path, ("user_interests",)))
