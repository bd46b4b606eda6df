"""Duplicate rows and row filtering on large tables against pandas' own answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recommender.data import duplicate_rows


def _table(rows: int, seed: int) -> pd.DataFrame:
    """Few distinct values per column, so that duplicates, near-duplicates and hash-sharing rows
    (same numbers, other text of the same length) all occur; text in several Arrow chunks."""
    rng = np.random.default_rng(seed)
    text = pa.chunked_array([pa.array(list(part), type=pa.large_string()) for part in
                             np.array_split(rng.choice(["java", "jav4", "c#", "sql", ""], rows).astype(object), 5)])
    return pd.DataFrame({
        "user_handle": rng.integers(1, 40, rows),
        "tag": pd.Series(pd.StringDtype("pyarrow", na_value=np.nan).__from_arrow__(text)),
        "date": pd.to_datetime(rng.integers(0, 30, rows), unit="D").as_unit("us"),
        "seconds": rng.choice([0.0, -0.0, 1.5, 300.0], rows),
    })


@pytest.mark.parametrize("seed", range(3))
def test_duplicated_is_pandas_duplicated(seed: int):
    frame = _table(250_000, seed)  # above the size where pandas alone answers
    expected = frame.duplicated().to_numpy()
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(duplicate_rows.duplicated(frame), expected)


def test_duplicated_without_numeric_columns_is_pandas_duplicated():
    frame = _table(150_000, 5)[["tag"]].copy()
    np.testing.assert_array_equal(duplicate_rows.duplicated(frame), frame.duplicated().to_numpy())


@pytest.mark.parametrize("dropped", [0, 1, 57, 10_000, 199_999])
def test_keep_rows_is_boolean_indexing(dropped: int):
    frame = _table(200_000, 1).iloc[::1]
    frame.index = pd.RangeIndex(3, 200_003)
    keep = np.ones(len(frame), dtype=bool)
    keep[np.random.default_rng(dropped).choice(len(frame), dropped, replace=False)] = False
    kept = duplicate_rows.keep_rows(frame, keep)
    pd.testing.assert_frame_equal(kept, frame[keep], check_exact=True)
    assert [repr(t) for t in kept.dtypes] == [repr(t) for t in frame.dtypes]
