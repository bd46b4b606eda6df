"""Exact cosine of chosen (user, candidate) pairs, then the top k by the exact search's rules.

The approximate search only proposes candidates; re-scoring them on the model's own vectors
(not on the reduced ones the index holds) makes the published scores exact, raises recall, and
lets the same rounding, tie-breaking by user_handle, self-exclusion and positivity rules apply
as in the exact search.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import sparse

from recommender.search.neighbours import SCORE_DECIMALS
from recommender.search.selection import rank_candidates

#: Query rows re-scored per step: bounds the (rows × candidates × features) dense temporaries.
_ROWS_PER_STEP = 4096


@numba.njit(parallel=True, cache=True, nogil=True)
def _sparse_pair_dots(indptr, indices, data, rows, cols, out):  # pragma: no cover - compiled
    """Dot products of sparse rows ``rows[i]`` and ``cols[i, j]`` by merging sorted indices."""
    for i in numba.prange(rows.shape[0]):
        a = rows[i]
        for j in range(cols.shape[1]):
            b = cols[i, j]
            pa, ea, pb, eb = indptr[a], indptr[a + 1], indptr[b], indptr[b + 1]
            total = np.float32(0.0)
            while pa < ea and pb < eb:
                if indices[pa] == indices[pb]:
                    total += data[pa] * data[pb]
                    pa += 1
                    pb += 1
                elif indices[pa] < indices[pb]:
                    pa += 1
                else:
                    pb += 1
            out[i, j] = total


def pair_cosines(unit: np.ndarray | sparse.csr_matrix, rows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(len(rows), C) cosines of each unit row ``rows[i]`` with the unit rows ``candidates[i]``."""
    out = np.empty(candidates.shape, dtype=np.float32)
    if sparse.issparse(unit):
        _sparse_pair_dots(unit.indptr, unit.indices, unit.data.astype(np.float32, copy=False), rows, candidates, out)
        return out
    for start in range(0, rows.size, _ROWS_PER_STEP):
        stop = start + _ROWS_PER_STEP
        out[start:stop] = np.einsum("bd,bcd->bc", unit[rows[start:stop]], unit[candidates[start:stop]])
    return out


def rerank(unit: np.ndarray | sparse.csr_matrix, rows: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(columns, rounded scores) of the top ``k`` candidates per row by exact cosine, ties by column.

    ``candidates`` (rows × C, -1 for none) are column indices; self and non-positive scores drop.
    """
    scores = np.round(pair_cosines(unit, rows, np.maximum(candidates, 0)), SCORE_DECIMALS)
    keep = (candidates >= 0) & (candidates != rows[:, None]) & (scores > 0)
    r, c = np.nonzero(keep)
    return rank_candidates(r, candidates[r, c], scores[r, c], rows.size, k)
