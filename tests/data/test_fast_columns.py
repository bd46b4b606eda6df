"""The fast column parsers against the careful ones (pandas), and where they must give up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recommender.data import fast_columns

EARLIEST = pd.Timestamp("1970-01-01", tz="UTC")
LATEST = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)


def _strings(values: list[str], chunks: int = 1) -> pd.Series:
    """An Arrow-backed ``str`` column split into ``chunks`` Arrow chunks, as the CSV reader makes."""
    parts = np.array_split(np.array(values, dtype=object), chunks)
    chunked = pa.chunked_array([pa.array(list(p), type=pa.string()) for p in parts])
    return pd.Series(pd.StringDtype("pyarrow", na_value=np.nan).__from_arrow__(chunked))


def _pandas_dates(values: list[str]) -> np.ndarray:
    """The careful parser's answer (the loader's ``_dates``)."""
    parsed = pd.to_datetime(pd.Series(values), format="ISO8601", utc=True)
    return parsed.dt.tz_localize(None).to_numpy()


def test_random_dates_and_times_agree_with_pandas():
    rng = np.random.default_rng(3)
    seconds = rng.integers(0, int(pd.Timestamp("2026-01-01").timestamp()), 20_000)
    stamps = pd.to_datetime(seconds, unit="s")
    leap_days = ["2000-02-29 00:00:00", "2020-02-29 23:59:59", "1972-02-29 12:00:00"]
    times = list(stamps.strftime("%Y-%m-%d %H:%M:%S")) + leap_days
    with_t = [t.replace(" ", "T") for t in times[:500]]
    dates = list(stamps.strftime("%Y-%m-%d")) + ["2000-02-29", "1970-01-01"]
    for values in (times, dates, times[:300] + with_t):
        fast = fast_columns.utc_dates(_strings(values, chunks=7), EARLIEST, LATEST)
        assert fast is not None and fast.dtype == np.dtype("datetime64[us]")
        np.testing.assert_array_equal(fast, _pandas_dates(values))


@pytest.mark.parametrize("odd", [
    "2019-02-29", "2100-02-29", "2019-04-31", "2019-13-01", "2019-00-10", "2019-07-00",
    "2019-07-31 24:00:00", "2019-07-31 23:60:00", "2019-07-31 23:59:60", "2019-07-31T10:00:00Z",
    "2019-07-31 10:00:00+02:00", "2019/07/31", "2019-7-31", " 2019-07-31", "20190731",
    "2019-07-31x10:00:00", "yesterday", "", "1969-12-31", "2999-01-01", "2019-07-31 10:00",
])
def test_anything_but_a_plain_valid_date_is_left_to_pandas(odd: str):
    assert fast_columns.utc_dates(_strings(["2019-07-31", odd]), EARLIEST, LATEST) is None


def test_dates_and_date_times_in_one_chunk_are_left_to_pandas():
    values = ["2019-07-31", "2019-07-31 10:00:00"]
    assert fast_columns.utc_dates(_strings(values), EARLIEST, LATEST) is None
    # One width per chunk is fine (the reader's blocks of a mixed file).
    fast = fast_columns.utc_dates(_strings(values, chunks=2), EARLIEST, LATEST)
    np.testing.assert_array_equal(fast, _pandas_dates(values))


def test_handles_of_digits_are_exact_int64():
    values = ["1", "007", "9007199254740993", "999999999999999999", "42"]
    fast = fast_columns.positive_handles(_strings(values, chunks=2))
    assert fast is not None and fast.dtype == np.int64
    assert fast.tolist() == [int(v) for v in values]  # exact, never through a float


@pytest.mark.parametrize("odd", ["0", "000", "+7", "-3", " 7", "7 ", "12.0", "1e3", "0x10", "", "\u0663",
                                 "9223372036854775807", "9223372036854775808"])
def test_handles_that_are_not_plain_digits_of_at_most_18_are_left_to_the_careful_parser(odd: str):
    assert fast_columns.positive_handles(_strings(["5", odd])) is None


def test_numbers_of_digits_are_exact_floats_and_bounds_are_checked():
    fast = fast_columns.plain_numbers(_strings(["0", "353", "86401"]))
    assert fast is not None and fast.dtype == np.float64 and fast.tolist() == [0.0, 353.0, 86_401.0]
    assert fast_columns.plain_numbers(_strings(["0", "300"]), (0.0, 300.0)).tolist() == [0.0, 300.0]
    assert fast_columns.plain_numbers(_strings(["0", "301"]), (0.0, 300.0)) is None


@pytest.mark.parametrize("odd", ["1.5", "-1", "1e3", "inf", "nan", " 3", "", "1" * 16])
def test_numbers_that_are_not_plain_digits_are_left_to_pandas(odd: str):
    assert fast_columns.plain_numbers(_strings(["3", odd])) is None


def test_a_column_that_is_not_arrow_backed_is_left_to_pandas():
    assert fast_columns.positive_handles(pd.Series(["1", "2"], dtype=object)) is None
