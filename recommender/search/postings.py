"""Exact top-k for sparse vectors by walking posting lists: cost follows the non-zeros, not users × features.

Why not a dense product: the interest model's rows hold a few tens of its ~750 tags, so a dense
GEMM spends nearly all its multiply-adds on zeros.  Why not scipy's sparse × sparse product: it
builds the (mostly full) product as a sparse matrix, cell by cell, on one thread, holding the GIL.
Here each query row scatters its few features' posting lists (users holding that feature) into a
dense accumulator, then keeps its top k while reading back only the touched users, in compiled
code, queries spread over all cores (numba).  Timings: docs/benchmarks.md.

Same rules as the dense path: scores rounded to :data:`SCORE_DECIMALS` before ranking, ties by
user index (= user_handle order), self excluded, positive only.  Each score is summed in the
query's feature order, so the result does not depend on threads or blocks.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import sparse

from recommender.search.neighbours import SCORE_DECIMALS

_SCALE = 10.0**SCORE_DECIMALS
#: Raw scores below this round to 0 (not a neighbour): skipped without rounding.
_MIN_RAW = np.float32(0.4 / _SCALE)


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_k_postings(q_indptr, q_indices, q_data, p_indptr, p_indices, p_data, query_index, n_users, k, parts, out_cols, out_scores):  # pragma: no cover - compiled
    n_queries = query_index.shape[0]
    per_part = (n_queries + parts - 1) // parts
    for part in numba.prange(parts):
        acc = np.zeros(n_users, dtype=np.float32)
        best_key = np.empty(k, dtype=np.int64)
        best_col = np.empty(k, dtype=np.int64)
        for q in range(part * per_part, min(n_queries, (part + 1) * per_part)):
            for jj in range(q_indptr[q], q_indptr[q + 1]):
                feature = q_indices[jj]
                weight = q_data[jj]
                for pp in range(p_indptr[feature], p_indptr[feature + 1]):
                    acc[p_indices[pp]] += weight * p_data[pp]
            acc[query_index[q]] = 0.0  # self is never a neighbour
            # Keep the k best by (rounded score desc, user asc): sorted insertion into k slots,
            # reading the accumulator in user order (so equal keys arrive by ascending user).
            filled = 0
            lower = _MIN_RAW
            for user in range(n_users):
                raw = acc[user]
                if raw < lower:
                    continue
                key = np.int64(np.rint(np.float64(raw) * _SCALE))
                if key <= 0 or (filled == k and key <= best_key[k - 1]):
                    continue
                slot = filled if filled < k else k - 1
                while slot > 0 and best_key[slot - 1] < key:
                    best_key[slot] = best_key[slot - 1]
                    best_col[slot] = best_col[slot - 1]
                    slot -= 1
                best_key[slot] = key
                best_col[slot] = user
                if filled < k:
                    filled += 1
                if filled == k:
                    lower = np.float32((best_key[k - 1] - 1) / _SCALE)
            acc[:] = 0.0
            for slot in range(filled):
                out_cols[q, slot] = best_col[slot]
                out_scores[q, slot] = np.float32(best_key[slot] / _SCALE)


def postings_top_k(
    unit: sparse.csr_matrix, postings: sparse.csr_matrix, query_index: np.ndarray, k: int, threads: int
) -> tuple[np.ndarray, np.ndarray]:
    """(columns, rounded scores) of the top ``k`` users of each query row ``unit[query_index]``.

    ``postings`` is ``unit.T`` as CSR (one row of users per feature), built once per search.
    """
    queries = unit[query_index]
    cols = np.full((query_index.size, k), -1, dtype=np.int64)
    scores = np.full((query_index.size, k), np.nan, dtype=np.float32)
    if query_index.size:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        _top_k_postings(
            queries.indptr, queries.indices, queries.data.astype(np.float32, copy=False),
            postings.indptr, postings.indices, postings.data.astype(np.float32, copy=False),
            query_index.astype(np.int64), unit.shape[0], k, max(1, min(threads * 4, query_index.size)), cols, scores,
        )
    return cols, scores
