"""Exact duplicate rows of a large table, found by hashing its numeric columns first.

``DataFrame.duplicated`` factorises every column through a hash table and combines the codes:
about 30 s for 30M interest rows.  Identical rows are identical in any subset of their columns,
so rows whose numeric columns (handle, date, seconds) hash to a value seen only once cannot be
duplicates.  Those hashes are sorted (numpy, a few seconds) and only the rows that share one
(the real duplicates and the rare collisions) go through ``DataFrame.duplicated``, which decides
exactly, first occurrence kept, as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_MIX = np.uint64(0x9E3779B97F4A7C15)
#: Bits of the bitmap that pre-filters rows before the binary search (2**24 bytes = 16 MB).
_BITMAP_BITS = 24
#: Rows below which pandas alone is as fast.
_SMALL = 100_000


def _splitmix(values: np.ndarray) -> np.ndarray:
    """A well-spread 64-bit hash of each value (the SplitMix64 finaliser), in place."""
    values ^= values >> np.uint64(30)
    values *= np.uint64(0xBF58476D1CE4E5B9)
    values ^= values >> np.uint64(27)
    values *= np.uint64(0x94D049BB133111EB)
    values ^= values >> np.uint64(31)
    return values


def _row_hashes(frame: pd.DataFrame) -> np.ndarray | None:
    """One uint64 per row from its int, float and datetime columns; ``None`` if it has none."""
    hashes = None
    for column in frame.columns:
        if frame[column].dtype.kind not in "iMf":  # text: left to the exact pass
            continue
        values = frame[column].to_numpy()
        if values.dtype.kind in "iM":
            bits = values.view(np.int64).astype(np.uint64)
        elif values.dtype.kind == "f":
            bits = (values + 0.0).view(np.uint64)  # -0.0 == 0.0 for pandas: one hash for both
        else:
            continue
        hashes = _splitmix(bits) if hashes is None else _splitmix(hashes * _MIX ^ bits)
    return hashes


def _shared(hashes: np.ndarray) -> np.ndarray:
    """Positions of the rows whose hash occurs more than once.

    A bitmap of the repeated hashes' top bits first (one cache-friendly lookup a row), so the
    binary search runs only on the few rows that pass it.
    """
    ordered = np.sort(hashes)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if len(repeated) == 0:
        return np.zeros(0, dtype=np.int64)
    bitmap = np.zeros(1 << _BITMAP_BITS, dtype=bool)
    bitmap[repeated >> np.uint64(64 - _BITMAP_BITS)] = True
    maybe = np.flatnonzero(bitmap[hashes >> np.uint64(64 - _BITMAP_BITS)])
    at = np.minimum(np.searchsorted(repeated, hashes[maybe]), len(repeated) - 1)
    return maybe[repeated[at] == hashes[maybe]]


def duplicated(frame: pd.DataFrame) -> np.ndarray:
    """``frame.duplicated().to_numpy()``, in a fraction of the time on large tables."""
    hashes = _row_hashes(frame) if len(frame) > _SMALL else None
    if hashes is None:
        return frame.duplicated().to_numpy()
    candidates = _shared(hashes)
    result = np.zeros(len(frame), dtype=bool)
    if len(candidates):
        result[candidates[frame.iloc[candidates].duplicated().to_numpy()]] = True
    return result
