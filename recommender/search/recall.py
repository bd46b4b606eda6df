"""Recall@10 of an approximate answer, measured on a seeded sample of users against exact search.

Why a sample: exact search of a sample against all users costs sample × users, a small share of
the full exact search, so every run can afford to check itself; the sample is seeded so that a rerun measures the same users.
"""

from __future__ import annotations

import numpy as np

#: Scores differing by less than this are a tie (two kernels may round a score a step apart).
_TIE_TOLERANCE = 1.5e-6


class RecallTooLow(RuntimeError):
    """The approximate search missed too many exact neighbours: the run must not publish."""


def sample_rows(count: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` users among ``count`` (all of them when there are fewer)."""
    if size >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=size, replace=False))


def recall_at_k(
    approx_similar: np.ndarray, approx_scores: np.ndarray, exact_similar: np.ndarray, exact_scores: np.ndarray, k: int = 10
) -> float:
    """Mean share of each user's exact top ``k`` that the approximate top ``k`` found.

    Rows are the same users in both answers; users with no exact neighbour do not count.  An
    approximate neighbour missing from the exact list but as similar as the exact k-th (a tie
    broken the other way) counts as found, since the exact list could have held it just as well.
    """
    approx, approx_s = approx_similar[:, :k], approx_scores[:, :k]
    exact, exact_s = exact_similar[:, :k], exact_scores[:, :k]
    wanted = (exact >= 0).sum(axis=1)
    users = wanted > 0
    if not users.any():
        return 1.0
    in_exact = ((approx[:, :, None] == exact[:, None, :]) & (exact[:, None, :] >= 0)).any(axis=2)
    last = exact_s[np.arange(len(exact)), np.maximum(wanted - 1, 0)]
    tied = (approx >= 0) & (approx_s >= (last - _TIE_TOLERANCE)[:, None])
    found = np.minimum((in_exact | tied).sum(axis=1), wanted)
    return float((found[users] / wanted[users]).mean())


def check_recall(handle: str, recall: float | None, min_recall: float) -> None:
    """Raise :class:`RecallTooLow` when a measured recall is under ``min_recall``."""
    if recall is not None and recall < min_recall:
        raise RecallTooLow(f"{handle}: recall@10 {recall:.4f} is below MIN_RECALL={min_recall}; not publishing")
