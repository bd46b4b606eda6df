"""Exact cosine of chosen (user, candidate) pairs, then the top k by the exact search's rules.

The approximate search only proposes candidates; re-scoring them on the model's own vectors
(not on the reduced ones the index holds) makes the published scores exact, raises recall, and
lets the same rounding, tie-breaking (:func:`~recommender.search.selection.tie_key`), self-exclusion and positivity rules apply
as in the exact search (the posting-list kernel's: scores rounded to :data:`SCORE_DECIMALS`,
then the lower tie key first).

The dots come from :mod:`recommender.search.pair_dots` (the one home of pair dots: a sparse query
row is scattered once and each candidate's row gathered against it, without a merge's branches),
accumulated in float32 in the candidate's feature order, which is the order a merge of the two
sorted rows adds them in; the selection is one compiled pass per query, queries spread over the
cores (numba).  Nothing of size (queries × candidates × features) is held, and no Python-level
sort of the (query, candidate) pairs is needed however many candidates each user gets.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import sparse

from recommender.search.neighbours import SCORE_DECIMALS
from recommender.search.pair_dots import pair_dots
from recommender.search.postings import keep_best

_SCALE = 10.0**SCORE_DECIMALS


@numba.njit(parallel=True, cache=True, nogil=True)
def _keep_top(rows, cands, dots, k, ids, out_cols, out_scores):  # pragma: no cover - compiled
    """Top k of each row's candidates by their rounded dot; no candidate (-1), self and non-positive drop."""
    for i in numba.prange(rows.shape[0]):
        a = rows[i]
        best_key = np.empty(k, dtype=np.int64)
        best_col = np.empty(k, dtype=np.int64)
        filled = 0
        for j in range(cands.shape[1]):
            b = cands[i, j]
            if b < 0 or b == a:
                continue
            key = np.int64(np.rint(np.float64(dots[i, j]) * _SCALE))
            if key > 0:
                filled = keep_best(key, b, best_key, best_col, filled, k, ids[a], ids)
        for slot in range(filled):
            out_cols[i, slot] = best_col[slot]
            out_scores[i, slot] = np.float32(best_key[slot] / _SCALE)


def rerank(unit: np.ndarray | sparse.csr_matrix, rows: np.ndarray, candidates: np.ndarray, k: int,
           ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns, rounded scores) of the top ``k`` candidates per row by exact cosine, ties by the
    tie key of the handles ``ids`` (by column).

    ``unit`` holds unit rows (sparse ones with sorted indices); ``candidates`` (rows × C, -1 for
    none, no repeats within a row) are column indices; self and non-positive scores drop.  Rows
    with fewer than ``k`` neighbours are padded with -1 / NaN.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    candidates = np.ascontiguousarray(candidates, dtype=np.int64)
    cols = np.full((rows.size, k), -1, dtype=np.int64)
    scores = np.full((rows.size, k), np.nan, dtype=np.float32)
    if rows.size == 0 or k < 1:
        return cols, scores
    dots = pair_dots(unit, rows, np.maximum(candidates, 0), np.float32)
    _keep_top(rows, candidates, dots, k, np.ascontiguousarray(ids, dtype=np.int64), cols, scores)
    return cols, scores
