"""The Arrow text behind pandas' ``str`` columns: typing it with pyarrow.compute, and cheap checks on its bytes.

The reader (:mod:`recommender.data.arrow_csv`) leaves every cell in Arrow buffers.  pandas'
``to_numeric`` and ``to_datetime`` would turn each into a Python object first (seconds per
million rows); pyarrow.compute parses the buffers directly.  A cast is all or nothing and says
which value it refused but not where, so when one fails :func:`first_refused` finds the first
refused row by casting halves (about one more pass over the column), for the error to name it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Parse = Callable[[pa.ChunkedArray], pa.ChunkedArray]

#: Rows per slice of a byte check: bounds its numpy temporaries.
_SLICE = 1 << 20


def strings(values: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow strings behind an Arrow-backed ``str`` column, without copying them; ``None`` otherwise."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        return None
    array = pa.array(values.array)
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def first_refused(text: pa.ChunkedArray, parse: Parse) -> int:
    """Position of the first value ``parse`` refuses, given that it refuses ``text`` as a whole.

    Halving: while ``text[:low]`` parses and ``text[low:high]`` does not, parse the first half of
    the latter; n/2 + n/4 + … values in all.
    """
    low, high = 0, len(text)
    while high - low > 1:
        middle = (low + high) // 2
        try:
            parse(text.slice(low, middle - low))
            low = middle
        except pa.ArrowInvalid:
            high = middle
    return low


def parsed(text: pa.ChunkedArray, parse: Parse) -> tuple[pa.ChunkedArray, int | None]:
    """(``parse(text)``, ``None``), or (``parse`` of the values before the first refused one, its position)."""
    try:
        return parse(text), None
    except pa.ArrowInvalid:
        refused = first_refused(text, parse)
        return parse(text.slice(0, refused)), refused


# --- Text: skip a transformation that would return every string unchanged ------------------------
# Stripping, lower-casing and capitalising copy the whole column (GBs at 1M users) even when the
# export is already clean, as it nearly always is.  The checks below look at bytes only and are
# conservative: any non-ASCII byte, or any ASCII byte the transformation could change, means the
# transformation runs (pandas' own ``.str`` methods, pyarrow.compute underneath).

def _buffers(text: pa.ChunkedArray, rows: int = _SLICE) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(offsets, bytes) of each slice of at most ``rows`` strings, as views of the Arrow buffers:
    string ``i`` of a slice is ``bytes[offsets[i] - offsets[0]:offsets[i + 1] - offsets[0]]``."""
    for chunk in text.chunks:
        for start in range(0, len(chunk), rows):
            part = chunk.slice(start, rows)
            if len(part) == 0:
                continue
            offset_type = np.int64 if pa.types.is_large_string(part.type) else np.int32
            _, offsets_buffer, data_buffer = part.buffers()
            offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[part.offset:part.offset + len(part) + 1]
            data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
            yield offsets, data[offsets[0]:offsets[-1]]


_PRINTABLE = np.zeros(256, dtype=bool)
_PRINTABLE[0x21:0x7F] = True  # visible ASCII: never whitespace in any definition, never changed by strip


def _every_slice(values: pd.Series, test) -> bool:
    """Whether ``test(offsets, bytes)`` holds for every slice of an Arrow-backed column."""
    text = strings(values)
    return text is not None and all(test(offsets, data) for offsets, data in _buffers(text))


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
    text = strings(values)
    if text is None or len(text) == 0:
        return 0 if text is not None else np.iinfo(np.int64).max
    return int(pc.max(pc.binary_length(text)).as_py())
