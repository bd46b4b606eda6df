"""Recommend items from neighbour lists: score = sum over neighbours of similarity x item.

For the users being evaluated, ``W`` (users x all users, sparse) holds each user's top-N
neighbours with their cosine scores and ``R`` (all users x items, binary) the training items;
``W @ R`` scores every candidate item at once.  Items the user already has in training are
dropped, and the top ``k`` per user are kept (ties broken by item index, so the answer is
exact and deterministic).  Work is done in blocks of users on the sparse non-zeros: no dense
users x items matrix and no Python loop per user.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recommender.topk import Neighbours

SCORE_DECIMALS = 9  # equal sums that differ only by float rounding count as ties


@dataclass(frozen=True)
class Interactions:
    """A binary users x items matrix over a fixed user and item index (both ascending)."""

    users: np.ndarray
    items: np.ndarray
    matrix: sparse.csr_matrix

    @classmethod
    def build(
        cls, users: np.ndarray, items: np.ndarray, pair_users: np.ndarray, pair_items: np.ndarray
    ) -> Interactions:
        rows = index_of(users, pair_users)
        cols = index_of(items, pair_items)
        matrix = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(len(users), len(items))
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return cls(np.asarray(users), np.asarray(items), matrix)


def index_of(index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` in the sorted ``index``; every value must be present."""
    pos = np.searchsorted(index, values)
    if len(values) and (pos.max() >= len(index) or not np.array_equal(index[pos], values)):
        raise KeyError("value not in the index")
    return pos.astype(np.int64)


def neighbour_weights(neighbours: Neighbours, users: np.ndarray, rows_for: np.ndarray) -> sparse.csr_matrix:
    """W: one row per handle in ``rows_for``, one column per handle in ``users`` (the full index),
    holding that user's neighbours' scores; users the model does not answer for get empty rows."""
    rows_for = np.asarray(rows_for, dtype=np.int64)
    answered = np.isin(neighbours.users, rows_for)
    similar = neighbours.similar[answered]
    scores = neighbours.scores[answered].astype(np.float64)
    row = np.repeat(index_of(rows_for, neighbours.users[answered]), similar.shape[1])
    valid = similar.ravel() >= 0
    col = index_of(users, similar.ravel()[valid])
    return sparse.csr_matrix(
        (scores.ravel()[valid], (row[valid], col)), shape=(len(rows_for), len(users))
    )


def recommend(
    weights: sparse.csr_matrix, train: sparse.csr_matrix, seen: sparse.csr_matrix, k: int, *, block: int = 2048
) -> np.ndarray:
    """Top-``k`` item indices per row of ``weights @ train``, minus ``seen`` (same rows as weights);
    rows with fewer than ``k`` positive-score candidates are padded with -1."""
    n = weights.shape[0]
    out = np.full((n, k), -1, dtype=np.int64)
    for start in range(0, n, block):
        stop = min(start + block, n)
        scores = (weights[start:stop] @ train).tocsr()
        scores = (scores - scores.multiply(seen[start:stop] > 0)).tocsr()
        scores.eliminate_zeros()
        scores.sort_indices()
        coo = scores.tocoo()
        values = np.round(coo.data, SCORE_DECIMALS)
        positive = values > 0
        rows, cols, values = coo.row[positive], coo.col[positive], values[positive]
        order = np.lexsort((cols, -values, rows))
        rows, cols = rows[order], cols[order]
        first = np.searchsorted(rows, np.arange(stop - start))
        rank = np.arange(len(rows)) - first[rows]
        keep = rank < k
        out[start + rows[keep], rank[keep]] = cols[keep]
    return out
