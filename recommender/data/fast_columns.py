"""Vectorised parsing of the clean, common case of a column: plain digits, fixed-width dates.

pandas' ``to_numeric`` and ``to_datetime`` turn every Arrow string into a Python object first
(seconds per million rows).  A published export is almost always plain: handles and view times
are decimal digits, dates are ``YYYY-MM-DD`` or ``YYYY-MM-DD hh:mm:ss``.  Those are parsed here
from the Arrow buffers with pyarrow.compute and numpy.

Each function answers only when it is certain that the careful parser (the loader's
``_handles``, ``_numbers``, ``_dates``) would accept every value and give the same result;
otherwise it returns ``None`` and the careful parser runs on that column, finds the first bad
value and names it.  So a fast path can never accept a value the careful path refuses, nor
word an error.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Digits below which a decimal string is an exact int64 and an exact float64 (< 2**53).
_EXACT_INT64_DIGITS = 18
_EXACT_FLOAT_DIGITS = 15
#: Rows per slice of a date column: bounds the numpy temporaries (~40 bytes a row) to ~40 MB.
_DATE_SLICE = 1 << 20


def _arrow(values: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow strings behind an Arrow-backed ``str`` column, without copying them."""
    if getattr(values.dtype, "storage", None) != "pyarrow":
        return None
    array = pa.array(values.array)
    chunked = array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])
    if chunked.null_count or not (pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)):
        return None
    return chunked


def _digits(values: pd.Series, max_digits: int) -> pa.ChunkedArray | None:
    """The column as int64 if every cell is 1..``max_digits`` ASCII digits (nothing else)."""
    strings = _arrow(values)
    if strings is None or len(strings) == 0:
        return None
    if not pc.all(pc.ascii_is_decimal(strings)).as_py():  # false for "", "+7", " 7", "12.0", "0x10"
        return None
    if pc.max(pc.binary_length(strings)).as_py() > max_digits:
        return None
    return pc.cast(strings, pa.int64())


def positive_handles(values: pd.Series) -> np.ndarray | None:
    """int64 handles when every cell is plain digits of a positive int64 that fits exactly."""
    numbers = _digits(values, _EXACT_INT64_DIGITS)
    if numbers is None or pc.min(numbers).as_py() <= 0:
        return None
    return numbers.to_numpy()


def plain_numbers(values: pd.Series, bounds: tuple[float, float] | None = None) -> np.ndarray | None:
    """float64 numbers when every cell is plain digits (so exact), within ``bounds`` if given."""
    numbers = _digits(values, _EXACT_FLOAT_DIGITS)
    if numbers is None:
        return None
    result = numbers.to_numpy().astype(np.float64)
    if bounds is not None and ((result < bounds[0]) | (result > bounds[1])).any():
        return None
    return result


#: Calendar of the years a valid date can have (1970 up to the run's next day): the day number
#: of the first of each month (index 12: of the next January), from numpy's own calendar.  A year
#: outside it is left to pandas, which refuses it.
_FIRST_YEAR, _LAST_YEAR = 1970, 2199
_MONTHS = np.arange(f"{_FIRST_YEAR}-01", f"{_LAST_YEAR + 1}-02", dtype="datetime64[M]")
_MONTH_START = _MONTHS.astype("datetime64[D]").astype(np.int64)
_FIRST_DAY = np.stack([_MONTH_START[i::12][: _LAST_YEAR - _FIRST_YEAR + 1] for i in range(13)], axis=1)
_MONTH_LENGTH = np.diff(_FIRST_DAY, axis=1)  # [year - 1970, month - 1]
#: Byte layout of the two accepted shapes: the digits and the fixed separators.
_DIGITS = {10: [0, 1, 2, 3, 5, 6, 8, 9], 19: [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]}
_SEPARATORS = {4: b"-", 7: b"-", 13: b":", 16: b":"}


def _buffers(strings: pa.ChunkedArray, rows: int = _DATE_SLICE) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(offsets, bytes) of each slice of at most ``rows`` strings, as views of the Arrow buffers:
    string ``i`` of a slice is ``bytes[offsets[i] - offsets[0]:offsets[i + 1] - offsets[0]]``."""
    for chunk in strings.chunks:
        for start in range(0, len(chunk), rows):
            part = chunk.slice(start, rows)
            if len(part) == 0:
                continue
            offset_type = np.int64 if pa.types.is_large_string(part.type) else np.int32
            _, offsets_buffer, data_buffer = part.buffers()
            offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[part.offset:part.offset + len(part) + 1]
            data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
            yield offsets, data[offsets[0]:offsets[-1]]


def _fixed_width_slices(strings: pa.ChunkedArray) -> Iterator[np.ndarray | None]:
    """Each slice of the column as an (rows, width) uint8 matrix; ``None`` for a slice of mixed widths."""
    for offsets, data in _buffers(strings):
        widths = np.diff(offsets)
        if widths.min() != widths.max():
            yield None
            return
        yield data.reshape(len(widths), int(widths[0]))


def _seconds(matrix: np.ndarray) -> np.ndarray | None:
    """Seconds since the epoch of ``YYYY-MM-DD`` or ``YYYY-MM-DD[T ]hh:mm:ss`` rows; ``None`` if any
    row is anything else or not a real date and time (month 13, 31 June, 24:00:00...)."""
    width = matrix.shape[1]
    if width not in (10, 19):
        return None
    for position, separator in _SEPARATORS.items():
        if position < width and not (matrix[:, position] == separator[0]).all():
            return None
    if width == 19 and not ((matrix[:, 10] == ord(" ")) | (matrix[:, 10] == ord("T"))).all():
        return None
    digits = matrix - np.uint8(ord("0"))  # uint8: any byte that is not a digit wraps above 9
    if (digits[:, _DIGITS[width]] > 9).any():
        return None

    def two(at: int) -> np.ndarray:  # a two-digit number, in uint8 (at most 99)
        return digits[:, at] * np.uint8(10) + digits[:, at + 1]

    year = two(0).astype(np.int16) * 100 + two(2) - _FIRST_YEAR
    month, day = two(5).astype(np.int16) - 1, two(8)
    if ((year < 0) | (year > _LAST_YEAR - _FIRST_YEAR) | (month < 0) | (month > 11)).any():
        return None
    if ((day < 1) | (day > _MONTH_LENGTH[year, month])).any():
        return None
    seconds = (_FIRST_DAY[year, month] + (day - 1)) * 86_400
    if width == 19:
        hour, minute, second = two(11), two(14), two(17)
        if ((hour > 23) | (minute > 59) | (second > 59)).any():
            return None
        seconds += hour.astype(np.int64) * 3_600 + minute.astype(np.int32) * 60 + second
    return seconds


def utc_dates(values: pd.Series, earliest: pd.Timestamp, latest: pd.Timestamp) -> np.ndarray | None:
    """datetime64[us] (naive UTC) when every cell is a plain date or date-time within the bounds."""
    strings = _arrow(values)
    if strings is None or len(strings) == 0:
        return None
    low, high = earliest.value // 1_000, latest.value // 1_000  # microseconds since the epoch
    parts = []
    for matrix in _fixed_width_slices(strings):
        seconds = None if matrix is None else _seconds(matrix)
        if seconds is None:
            return None
        micros = seconds * 1_000_000
        if ((micros < low) | (micros > high)).any():
            return None
        parts.append(micros)
    return np.concatenate(parts).view("datetime64[us]") if parts else None


# --- Text: skip a transformation that would return every string unchanged ------------------------
# Stripping, lower-casing and capitalising copy the whole column (GBs at 1M users) even when the
# export is already clean, as it nearly always is.  The checks below look at bytes only and are
# conservative: any non-ASCII byte, or any ASCII byte the transformation could change, means the
# transformation runs as before (pandas' own ``.str`` methods, pyarrow.compute underneath).

_PRINTABLE = np.zeros(256, dtype=bool)
_PRINTABLE[0x21:0x7F] = True  # visible ASCII: never whitespace in any definition, never changed by strip


def _every_slice(values: pd.Series, test) -> bool:
    """Whether ``test(offsets, bytes)`` holds for every slice of an Arrow-backed column."""
    strings = _arrow(values)
    return strings is not None and all(test(offsets, data) for offsets, data in _buffers(strings))


def _ends_printable(offsets: np.ndarray, data: np.ndarray) -> bool:
    starts, ends = offsets[:-1] - offsets[0], offsets[1:] - offsets[0]
    filled = ends > starts  # an empty string strips to itself
    return bool(_PRINTABLE[data[starts[filled]]].all() and _PRINTABLE[data[ends[filled] - 1]].all())


def _no_upper(offsets: np.ndarray, data: np.ndarray) -> bool:
    return len(data) == 0 or bool(data.max() < 0x80 and not ((data - np.uint8(ord("A"))) < 26).any())


def _capitalised(offsets: np.ndarray, data: np.ndarray) -> bool:
    if len(data) and data.max() >= 0x80:
        return False
    starts, ends = offsets[:-1] - offsets[0], offsets[1:] - offsets[0]
    first = np.zeros(len(data), dtype=bool)
    first[starts[ends > starts]] = True
    upper = (data - np.uint8(ord("A"))) < 26
    lower = (data - np.uint8(ord("a"))) < 26
    return not (lower & first).any() and not (upper & ~first).any()


def strip(values: pd.Series) -> pd.Series:
    """``values.str.strip()``; the column itself when no value starts or ends with a space."""
    return values if _every_slice(values, _ends_printable) else values.str.strip()


def lower(values: pd.Series) -> pd.Series:
    """``values.str.lower()``; the column itself when it is ASCII without a capital."""
    return values if _every_slice(values, _no_upper) else values.str.lower()


def capitalize(values: pd.Series) -> pd.Series:
    """``values.str.capitalize()``; the column itself when every value already is (``Beginner``)."""
    return values if _every_slice(values, _capitalised) else values.str.capitalize()


def longest_bytes(values: pd.Series) -> int:
    """Bytes of the longest value (an upper bound on its characters); large when unknown."""
    strings = _arrow(values)
    if strings is None or len(strings) == 0:
        return 0 if strings is not None else np.iinfo(np.int64).max
    return int(pc.max(pc.binary_length(strings)).as_py())
