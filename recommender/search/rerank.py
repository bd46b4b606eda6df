"""Exact cosine of chosen (user, candidate) pairs, then the top k by the exact search's rules.

The approximate search only proposes candidates; re-scoring them on the model's own vectors
(not on the reduced ones the index holds) makes the published scores exact, raises recall, and
lets the same rounding, tie-breaking by user_handle, self-exclusion and positivity rules apply
as in the exact search.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recommender.search.neighbours import SCORE_DECIMALS
from recommender.search.pair_dots import pair_dots
from recommender.search.selection import rank_candidates

#: Query rows re-scored per step: bounds the (rows × candidates × features) dense temporaries.
_ROWS_PER_STEP = 4096


def pair_cosines(unit: np.ndarray | sparse.csr_matrix, rows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(len(rows), C) cosines of each unit row ``rows[i]`` with the unit rows ``candidates[i]``."""
    if sparse.issparse(unit):
        return pair_dots(unit, rows, candidates, np.float32)
    out = np.empty(candidates.shape, dtype=np.float32)
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
