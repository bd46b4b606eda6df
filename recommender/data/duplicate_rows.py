"""Exact duplicate rows of a large table, found by hashing its numeric columns first.

``DataFrame.duplicated`` factorises every column through a hash table and combines the codes,
which is slow on tens of millions of rows.  Identical rows are identical in any subset of their columns,
so rows whose numeric columns (handle, date, seconds) hash to a value seen only once cannot be
duplicates.  Those hashes are sorted (numpy) and only the rows that share one
(the real duplicates and the rare collisions) go through ``DataFrame.duplicated``, which decides
exactly, first occurrence kept, as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.data.arrow_columns import strings as arrow_strings
from recommender.hashing import splitmix64

_MIX = np.uint64(0x9E3779B97F4A7C15)
#: Bits of each membership bitmap (2**26 bytes = 64 MB): with 2M repeated hashes, ~3% of a
#: bitmap is set, so ~0.1% of the other rows pass both by chance.
_BITMAP_BITS = 26
#: Rows below which pandas alone is as fast.
_SMALL = 100_000


def _row_hashes(frame: pd.DataFrame) -> np.ndarray | None:
    """One uint64 per row from its int, float and datetime columns and the byte lengths of its
    Arrow text (cheap: read from the offsets); ``None`` if it has no such column."""
    hashes = None
    for column in frame.columns:
        strings = arrow_strings(frame[column])
        if strings is not None:
            values = pc.binary_length(strings).to_numpy()
        elif frame[column].dtype.kind in "iMf":
            values = frame[column].to_numpy()
        else:
            continue
        if values.dtype.kind in "iM":
            bits = values.view(np.int64).astype(np.uint64)
        elif values.dtype.kind == "f":
            bits = (values + 0.0).view(np.uint64)  # -0.0 == 0.0 for pandas: one hash for both
        else:
            continue
        hashes = bits if hashes is None else hashes * _MIX ^ bits  # multiply-xor: a column costs 2 passes
    return None if hashes is None else splitmix64(hashes, in_place=True)  # then spread every bit once, for the bitmaps


def _shared(hashes: np.ndarray) -> np.ndarray:
    """Positions of the rows whose hash (probably) occurs more than once.

    Every such row is returned, plus a few others: membership is tested in two bitmaps of the
    repeated hashes (top and bottom bits), not exactly; a row that passes both by chance is only
    one more row for the exact pass, while a binary search per row would cost seconds.
    """
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if len(repeated) == 0:
        return np.zeros(0, dtype=np.int64)
    high, low = np.uint64(64 - _BITMAP_BITS), np.uint64((1 << _BITMAP_BITS) - 1)
    top, bottom = np.zeros(1 << _BITMAP_BITS, dtype=bool), np.zeros(1 << _BITMAP_BITS, dtype=bool)
    top[repeated >> high] = True
    bottom[repeated & low] = True
    return np.flatnonzero(top[hashes >> high] & bottom[hashes & low])


def duplicated(frame: pd.DataFrame) -> np.ndarray:
    """``frame.duplicated().to_numpy()``, in a fraction of the time on large tables."""
    hashes = _row_hashes(frame) if len(frame) > _SMALL else None
    if hashes is None:
        return frame.duplicated().to_numpy()
    candidates = _shared(hashes)
    result = np.zeros(len(frame), dtype=bool)
    if len(candidates):
        result[candidates[_take(frame, candidates).duplicated().to_numpy()]] = True
    return result


def _take(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``frame.iloc[positions]`` (sorted positions), taking Arrow text chunk by chunk: Arrow's
    take on a column of 1,700 chunks first concatenates them all, a copy of the whole column."""
    columns = {}
    for column in frame.columns:
        strings = arrow_strings(frame[column])
        if strings is None:
            columns[column] = frame[column].to_numpy()[positions]
            continue
        bounds = np.cumsum([0] + [len(chunk) for chunk in strings.chunks])
        which = np.searchsorted(bounds, positions, side="right") - 1
        cuts = np.flatnonzero(np.diff(which)) + 1
        taken = [strings.chunk(int(w[0])).take(pa.array(p - bounds[w[0]]))
                 for w, p in zip(np.split(which, cuts), np.split(positions, cuts))]
        columns[column] = pd.Series(frame[column].dtype.__from_arrow__(pa.chunked_array(taken, type=strings.type)))
    return pd.DataFrame(columns)


#: Most runs of kept rows for which a text column is sliced (no copy) rather than filtered.
_MAX_RUNS = 4_096


def keep_rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """``frame[keep]``, without copying Arrow text when only a few rows go.

    Dropping 57 of 25M view rows used to copy every column (GBs, seconds): the text columns are
    instead made of zero-copy slices of their Arrow buffers between the dropped rows.
    """
    edges = np.flatnonzero(np.diff(np.concatenate(([False], keep, [False])).astype(np.int8)))
    runs = edges.reshape(-1, 2)  # [start, stop) of each run of kept rows
    columns = {}
    for column in frame.columns:
        strings = arrow_strings(frame[column])
        if strings is not None and len(runs) <= _MAX_RUNS:
            pieces = [chunk for a, b in runs for chunk in strings.slice(a, b - a).chunks]
            kept = pa.chunked_array(pieces, type=strings.type)
            columns[column] = pd.Series(frame[column].dtype.__from_arrow__(kept), copy=False)
        elif strings is not None:
            columns[column] = pd.Series(frame[column].array[keep], copy=False)
        else:
            columns[column] = pd.Series(frame[column].to_numpy()[keep], copy=False)
    result = pd.concat(columns, axis=1) if columns else frame.iloc[keep]
    result.index = frame.index[keep]
    return result
