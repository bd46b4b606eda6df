"""Metric functions: plain numpy on arrays, each checked on hand-made cases in the tests.

Ranking metrics are per user (the caller averages them, so the same per-user figures serve the
paired comparisons of the tuning).  A user the model recommends nothing to scores 0: models are
compared on the same users, and not answering is a miss.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from recommender.topk import Neighbours


def standard_error(values: np.ndarray) -> float:
    """Standard error of the mean of per-user (or per-pair) values: "better" must be outside the noise."""
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def ranking_metrics(recommended: np.ndarray, relevant: sparse.csr_matrix) -> dict[str, np.ndarray]:
    """Per-user recall@k, NDCG@k and hit-rate@k of ``recommended`` against ``relevant``.

    ``recommended`` is (users, k) item indices, best first, padded with -1; ``relevant`` is a
    binary (users, items) matrix, every row with at least one item.

    * recall@k = hits / number of relevant items
    * NDCG@k = sum over hit ranks r (0-based) of 1/log2(r + 2), divided by the same sum for an
      ideal list, which puts min(relevant, k) hits first (binary relevance)
    * hit-rate@k = 1 if at least one hit
    """
    recommended = np.asarray(recommended, dtype=np.int64)
    relevant = sparse.csr_matrix(relevant)
    users, k = recommended.shape
    n_relevant = np.diff(relevant.indptr)
    if (n_relevant == 0).any():
        raise ValueError("every evaluated user needs at least one relevant item")
    width = relevant.shape[1]
    wanted = np.repeat(np.arange(users, dtype=np.int64), n_relevant) * width + relevant.indices
    keys = np.where(recommended >= 0, np.arange(users, dtype=np.int64)[:, None] * width + recommended, -1)
    hits = np.isin(keys, wanted) & (recommended >= 0)
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k) - 1] if k else np.zeros(users)
    return {
        "recall": hits.sum(axis=1) / n_relevant,
        "ndcg": (hits * discount).sum(axis=1) / ideal if k else np.zeros(users),
        "hit_rate": hits.any(axis=1).astype(np.float64),
    }


def catalogue_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the ``n_items`` catalogue that appears in at least one list."""
    shown = np.unique(recommended[recommended >= 0])
    return float(len(shown) / n_items) if n_items else 0.0


def user_coverage(neighbours: Neighbours, users: np.ndarray) -> float:
    """Share of ``users`` the model answers for (at least one neighbour)."""
    users = np.asarray(users)
    if not len(users):
        return 0.0
    answered = neighbours.users[neighbours.similar[:, 0] >= 0] if neighbours.similar.size else neighbours.users[:0]
    return float(np.isin(users, answered).mean())


def level_accuracy(
    weights: sparse.csr_matrix, level_mix: np.ndarray, heldout_levels: np.ndarray
) -> np.ndarray:
    """Per user: share of the held-out items whose level is the neighbours' majority level.

    ``level_mix`` (all users, levels) holds each user's training items per level as shares (rows
    sum to 1, or 0 without items); the neighbours' similarity-weighted mix predicts one level
    (ties to the lowest level index).  ``heldout_levels`` (evaluated users, levels) counts the
    held-out items per level.  A user without neighbours (or whose neighbours have no items)
    scores 0.
    """
    predicted_mix = np.asarray(weights @ level_mix)
    predicted = predicted_mix.argmax(axis=1)
    answered = predicted_mix.max(axis=1) > 0
    heldout_levels = np.asarray(heldout_levels, dtype=np.float64)
    right = heldout_levels[np.arange(len(predicted)), predicted]
    return np.where(answered, right / heldout_levels.sum(axis=1), 0.0)


def planted_precision(neighbours: Neighbours, truth: pd.Series) -> float:
    """Mean over answered users of the share of their neighbours with the same ``truth`` label.

    ``truth`` maps user_handle to a label (hidden community or skill); users or neighbours
    missing from it are left out.
    """
    per_user = planted_precision_per_user(neighbours, truth)
    return float(per_user.mean()) if len(per_user) else 0.0


def planted_precision_per_user(neighbours: Neighbours, truth: pd.Series) -> np.ndarray:
    """The per-user shares that :func:`planted_precision` averages (answered users only)."""
    truth = truth[~truth.index.duplicated()].sort_index()
    handles = truth.index.to_numpy(dtype=np.int64)
    labels = pd.factorize(truth.to_numpy())[0]

    def label_of(values: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(handles, values), len(handles) - 1)
        return np.where((values >= 0) & (handles[pos] == values), labels[pos], -1)

    own = label_of(neighbours.users)
    theirs = label_of(neighbours.similar)
    counted = (theirs >= 0) & (own[:, None] >= 0)
    per_user = counted.sum(axis=1)
    same = ((theirs == own[:, None]) & counted).sum(axis=1)
    rows = per_user > 0
    return same[rows] / per_user[rows]


def chance_precision(truth: pd.Series) -> float:
    """Expected planted precision of random neighbours: the sum of squared label shares."""
    return float((truth.value_counts(normalize=True) ** 2).sum())


def mean_jaccard(a: Neighbours, b: Neighbours) -> float:
    """Mean Jaccard overlap of the two models' neighbour sets over the users both answer for."""
    common, ia, ib = np.intersect1d(a.users, b.users, return_indices=True)
    left, right = a.similar[ia], b.similar[ib]
    answered = (left >= 0).any(axis=1) & (right >= 0).any(axis=1)
    left, right = left[answered], right[answered]
    if not len(left):
        return 0.0
    both = ((left[:, :, None] == right[:, None, :]) & (left[:, :, None] >= 0)).sum(axis=(1, 2))
    union = (left >= 0).sum(axis=1) + (right >= 0).sum(axis=1) - both
    return float((both / union).mean())
