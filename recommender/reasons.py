"""Why two users are similar: up to 3 reasons per stored neighbour, computed where the vectors are.

For a cosine over non-negative feature vectors (tags, courses, assessment tags) the similarity of
``u`` and ``v`` is a sum over features ``j`` of ``û_j · v̂_j`` (unit vectors): each shared feature's
*contribution* is exact, and the three largest are the reasons (``weight`` = that contribution, so
a neighbour's weights add up to at most its score).  The product is taken for all (user,
neighbour) pairs of a block at once: no users × users matrix.

Models without interpretable features say what they can: the ALS model the shared courses of its
(BM25) confidence matrix, the DNN the levels both users watch with each one's share of their courses
(neighbours who all watch the three levels are told apart by how much), the ensemble
the models that find the neighbour similar (their share of the fused score).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recommender.search.neighbours import Neighbours  # the type only: partitions' workers unpickle Explanations without the search

MAX_REASONS = 3
WEIGHT_DECIMALS = 3  # "weight": 0.31: enough to rank, small to store
PAIR_BLOCK = 65536  # (user, neighbour) pairs per block: bounds the gathered sparse rows


@dataclass(frozen=True)
class Explanations:
    """Reasons of every (user, neighbour) of a ``Neighbours``: ``index[i, r, k]`` is the position in
    ``names`` of the k-th reason of the r-th neighbour of user ``i`` (-1: none), ``weight`` its weight."""

    kind: str  # "tag", "course", "assessment", "model", "level"
    names: np.ndarray  # feature names (str)
    index: np.ndarray  # (U, N, MAX_REASONS) int64
    weight: np.ndarray  # (U, N, MAX_REASONS) float64

    def for_row(self, row: int, count: int) -> list[list[tuple[str, str, float]]]:
        """The reasons of user ``row``'s first ``count`` neighbours as (kind, value, weight)."""
        return [
            [(self.kind, str(self.names[j]), float(w)) for j, w in zip(idx, wt) if j >= 0]
            for idx, wt in zip(self.index[row, :count], self.weight[row, :count])
        ]


def _top_per_row(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_rows, MAX_REASONS) columns and values of the largest positive ``values`` per row (ties by column)."""
    keep = values > 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    top = rank < MAX_REASONS
    index = np.full((n_rows, MAX_REASONS), -1, dtype=np.int64)
    weight = np.zeros((n_rows, MAX_REASONS), dtype=np.float64)
    index[rows[top], rank[top]] = cols[top]
    weight[rows[top], rank[top]] = np.round(values[top], WEIGHT_DECIMALS)
    return _named(index, weight)


def _named(index: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, weight) without the reasons whose weight rounds to 0 (too small to be a reason)."""
    return np.where(weight > 0, index, -1), np.where(weight > 0, weight, 0.0)


def _pairs(neighbours: Neighbours, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat (pair number, user's row, neighbour's row) of every listed neighbour, rows in ``users``."""
    valid = neighbours.similar >= 0
    pair = np.flatnonzero(valid.ravel())
    user_rows = np.searchsorted(users, np.repeat(neighbours.users, neighbours.similar.shape[1])[pair])
    neighbour_rows = np.searchsorted(users, neighbours.similar.ravel()[pair])
    return pair, user_rows, neighbour_rows


def shared_features(
    vectors: sparse.spmatrix, users: np.ndarray, neighbours: Neighbours, names: np.ndarray, kind: str,
    *, feature_of_column: np.ndarray | None = None, row_norms: np.ndarray | None = None,
) -> Explanations:
    """Reasons = the shared features with the largest contribution ``û_j · v̂_j`` to the cosine.

    ``feature_of_column`` maps several columns to one named feature (the assessment model stores
    two coordinates per tag); their contributions are added.  ``row_norms``: the norms of the
    vectors the cosine was taken on, when ``vectors`` keeps only the entries that may be named
    (the assessment model's taken tags, without the related-tag smoothing).
    """
    from sklearn.preprocessing import normalize  # the API imports this module for describe() only

    if row_norms is None:
        unit = normalize(sparse.csr_matrix(vectors, dtype=np.float64))
    else:
        scale = np.divide(1.0, row_norms, out=np.zeros(len(row_norms)), where=row_norms > 0)
        unit = sparse.csr_matrix(sparse.diags(scale) @ sparse.csr_matrix(vectors, dtype=np.float64))
    from recommender.search.pair_dots import top_shared_features  # numba: the API never explains

    if feature_of_column is None:
        feature_of_column = np.arange(unit.shape[1])
    if np.any(np.diff(feature_of_column) < 0):
        raise ValueError("feature_of_column must not decrease: a feature's columns are adjacent")
    shape = neighbours.similar.shape
    index = np.full((shape[0] * shape[1], MAX_REASONS), -1, dtype=np.int64)
    weight = np.zeros((shape[0] * shape[1], MAX_REASONS), dtype=np.float64)
    pair, user_rows, neighbour_rows = _pairs(neighbours, users)
    for start in range(0, len(pair), PAIR_BLOCK):
        block = slice(start, start + PAIR_BLOCK)
        idx, wt = top_shared_features(unit, np.asarray(feature_of_column, dtype=np.int64), user_rows[block],
                                      neighbour_rows[block], MAX_REASONS)
        index[pair[block]], weight[pair[block]] = _named(idx, np.round(wt, WEIGHT_DECIMALS))
    return Explanations(kind, np.asarray(names), index.reshape(*shape, MAX_REASONS), weight.reshape(*shape, MAX_REASONS))


SHARE_STEP = 10  # level shares are told in steps of 10%: "60% of yours, 50% of theirs"
MIN_LEVEL_SHARE = 0.05  # a level both users give less than this is no reason


def level_names(levels: tuple[str, ...]) -> np.ndarray:
    """Every (level, user's share, neighbour's share) reason, shares in steps of ``SHARE_STEP`` %:
    index ``(level · S + user_step) · S + neighbour_step`` with ``S = 100 / SHARE_STEP + 1``."""
    steps = range(0, 101, SHARE_STEP)
    return np.array([f"{level} courses ({a}% of yours, {b}% of theirs)" for level in levels for a in steps for b in steps])


def level_overlap(mix: np.ndarray, users: np.ndarray, neighbours: Neighbours, levels: tuple[str, ...]) -> Explanations:
    """Reasons = the course levels both users watch (at least ``MIN_LEVEL_SHARE`` each), weighted by
    ``min(share_u, share_v)``, each naming both users' shares: two neighbours who both watch the three
    levels are told apart by how much of each they watch."""
    shape = neighbours.similar.shape
    pair, user_rows, neighbour_rows = _pairs(neighbours, users)
    overlap = np.minimum(mix[user_rows], mix[neighbour_rows])  # (pairs, levels): no users x users
    overlap = np.where(overlap >= MIN_LEVEL_SHARE, overlap, 0.0)
    rows = np.repeat(np.arange(len(pair)), overlap.shape[1])
    cols = np.tile(np.arange(overlap.shape[1]), len(pair))
    idx, wt = _top_per_row(rows, cols, overlap.ravel(), len(pair))
    per_level = 100 // SHARE_STEP + 1
    step = lambda share: np.rint(share * 100 / SHARE_STEP).astype(np.int64)  # noqa: E731 - one use
    chosen = np.maximum(idx, 0)
    mine = step(np.take_along_axis(mix[user_rows], chosen, 1))
    theirs = step(np.take_along_axis(mix[neighbour_rows], chosen, 1))
    idx = np.where(idx >= 0, (idx * per_level + mine) * per_level + theirs, -1)
    index = np.full((shape[0] * shape[1], MAX_REASONS), -1, dtype=np.int64)
    weight = np.zeros((shape[0] * shape[1], MAX_REASONS), dtype=np.float64)
    index[pair], weight[pair] = idx, wt
    return Explanations("level", level_names(levels), index.reshape(*shape, MAX_REASONS), weight.reshape(*shape, MAX_REASONS))


def agreeing_models(contributions: np.ndarray, handles: tuple[str, ...]) -> Explanations:
    """Reasons = the models that list the neighbour, by their share of the fused score.

    ``contributions`` is (U, N, models).
    """
    shape = contributions.shape[:2]
    flat = contributions.reshape(-1, contributions.shape[2])
    rows, cols = np.nonzero(flat)
    idx, wt = _top_per_row(rows, cols, flat[rows, cols], flat.shape[0])
    return Explanations("model", np.asarray(handles), idx.reshape(*shape, MAX_REASONS), wt.reshape(*shape, MAX_REASONS))


TEXT = {
    "tag": "both follow {value}",
    "course": "both watched {value}",
    "assessment": "both took the {value} assessment with similar results",
    "model": "{value} also finds this user similar",
    "level": "both watch {value}",
}


def describe(kind: str, value: str) -> str:
    """The human-readable form of a reason (the API adds it; the store keeps only kind/value/weight)."""
    return TEXT.get(kind, "{value}").format(value=value)


def described(reason) -> dict:
    """A stored reason (``recommender.store.items.Reason``) as the API and the explorer show it:
    its kind, value and weight, and :func:`describe`'s text."""
    return {**reason.to_dict(), "text": describe(reason.kind, reason.value)}
