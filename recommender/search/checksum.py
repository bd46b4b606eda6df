"""A checksum of a model's published lists that does not depend on how the users were partitioned.

Why: two runs (two engines, two versions, the same data twice) should publish the same lists,
and reading both run tables back to compare them takes minutes at scale.  Each row (user, neighbours, scores' bits) is mixed into a 64-bit value and
the rows are *added* (mod 2^64), so a Dask partition sends two integers back and the driver adds
them: the sum over blocks is the sum over all users, in any order.  Two independent mixes give 128
bits.  Not a cryptographic digest (nobody forges lists here); equal checksums mean equal lists
but for a 2^-128 accident.
"""

from __future__ import annotations

import numpy as np

from recommender.search.neighbours import Neighbours

_SEEDS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F)
_MASK = (1 << 64) - 1


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, on every element (uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def parts(neighbours: Neighbours) -> tuple[int, int]:
    """The two 64-bit sums of ``neighbours``' rows; add them over blocks with :func:`combine`."""
    columns = [neighbours.users.astype(np.int64).view(np.uint64)[:, None],
               neighbours.similar.astype(np.int64).view(np.uint64),
               np.ascontiguousarray(neighbours.scores, dtype=np.float32).view(np.uint32).astype(np.uint64)]
    values = np.concatenate(columns, axis=1) if len(neighbours.users) else np.zeros((0, 1), dtype=np.uint64)
    sums = []
    with np.errstate(over="ignore"):
        for seed in _SEEDS:
            row = np.full(len(values), seed, dtype=np.uint64)
            for column in values.T:
                row = _mix(row ^ column)
            sums.append(int(row.sum(dtype=np.uint64)))
    return sums[0], sums[1]


def combine(sums: list[tuple[int, int]]) -> str:
    """The checksum of the union of blocks (32 hex digits) from their :func:`parts`."""
    first = sum(s[0] for s in sums) & _MASK
    second = sum(s[1] for s in sums) & _MASK
    return f"{first:016x}{second:016x}"


def checksum(neighbours: Neighbours) -> str:
    return combine([parts(neighbours)])
