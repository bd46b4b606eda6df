"""The package's one 64-bit mixing function, shared by the data and search layers.

SplitMix64's finaliser spreads every input bit over the whole output: the duplicate-row finder
(:mod:`recommender.data.duplicate_rows`) needs well-spread row hashes for its bitmaps, and the
lists checksum (:mod:`recommender.search.checksum`) needs two runs' rows to collide only by
accident.  Neither layer depends on the other, so the function lives here, below both.
"""

from __future__ import annotations

import numpy as np


def splitmix64(values: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """SplitMix64's finaliser of every element of a uint64 array (uint64 arithmetic wraps).

    A new array, or ``values`` itself with ``in_place`` (the caller's own temporary): at tens of
    millions of rows each array is hundreds of MB.
    """
    mixed = values if in_place else values.copy()
    mixed ^= mixed >> np.uint64(30)
    mixed *= np.uint64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> np.uint64(27)
    mixed *= np.uint64(0x94D049BB133111EB)
    mixed ^= mixed >> np.uint64(31)
    return mixed
