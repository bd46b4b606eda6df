"""A checksum of a model's published lists that does not depend on how the users were partitioned.

Why: two runs (two engines, two versions, the same data twice) should publish the same lists,
and reading both run tables back to compare them takes minutes at scale.  Each row (user, neighbours, scores' bits) is mixed into a 64-bit value and
the rows are *added* (mod 2^64), so a Dask partition sends two integers back and the driver adds
them: the sum over blocks is the sum over all users, in any order.  Two independent mixes give 128
bits.  Not a cryptographic digest (nobody forges lists here); equal checksums mean equal lists
but for a 2^-128 accident.

It covers what is published and nothing else: a user with no neighbour (no item) adds nothing, a
row's padding (-1, NaN) is skipped, and a score counts as the decimal that is stored
(:func:`~recommender.search.neighbours.stored_units`), so the same checksum is computed again from
the stored items alone (:func:`of_items`): that is how an export is verified before it is loaded.
"""

from __future__ import annotations

import numpy as np

from recommender.hashing import splitmix64
from recommender.search.neighbours import Neighbours, stored_units

_SEEDS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F)
_MASK = (1 << 64) - 1


def parts(neighbours: Neighbours) -> tuple[int, int]:
    """The two 64-bit sums of ``neighbours``' published rows; add them over blocks with :func:`combine`."""
    similar = np.asarray(neighbours.similar)
    valid = similar >= 0
    published = valid[:, 0] if similar.ndim == 2 and similar.shape[1] else np.zeros(len(similar), dtype=bool)
    users = neighbours.users.astype(np.int64).view(np.uint64)[published]
    ids = similar[published].astype(np.int64).view(np.uint64)
    valid = valid[published]
    units = stored_units(np.where(valid, np.asarray(neighbours.scores)[published], 0.0)).view(np.uint64)
    sums = []
    with np.errstate(over="ignore"):
        for seed in _SEEDS:
            row = splitmix64(np.full(len(users), seed, dtype=np.uint64) ^ users, in_place=True)
            for column in range(ids.shape[1]):  # a padded entry leaves the row as it was
                mixed = splitmix64(splitmix64(row ^ ids[:, column], in_place=True) ^ units[:, column], in_place=True)
                row = np.where(valid[:, column], mixed, row)
            sums.append(int(row.sum(dtype=np.uint64)))
    return sums[0], sums[1]


def combine(sums: list[tuple[int, int]]) -> str:
    """The checksum of the union of blocks (32 hex digits) from their :func:`parts`."""
    first = sum(s[0] for s in sums) & _MASK
    second = sum(s[1] for s in sums) & _MASK
    return f"{first:016x}{second:016x}"


def checksum(neighbours: Neighbours) -> str:
    return combine([parts(neighbours)])


def of_items(users: list[int], similar: list[list[int]], scores: list[list[float]]) -> tuple[int, int]:
    """:func:`parts` of stored items' lists (each user's neighbours and scores as stored), e.g. one
    part of an export; the rows may have any lengths."""
    width = max((len(row) for row in similar), default=0)
    ids = np.full((len(users), max(width, 1)), -1, dtype=np.int64)
    values = np.full(ids.shape, np.nan, dtype=np.float64)
    for i, (row, row_scores) in enumerate(zip(similar, scores)):  # per item, not users x users
        ids[i, :len(row)] = row
        values[i, :len(row_scores)] = row_scores
    return parts(Neighbours(np.asarray(users, dtype=np.int64), ids, values))
