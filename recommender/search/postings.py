"""Exact top-k for sparse vectors by walking posting lists: cost follows the non-zeros, not users × features.

Why not a dense product: the interest model's rows hold a few tens of its ~750 tags, so a dense
GEMM spends nearly all its multiply-adds on zeros.  Why not scipy's sparse × sparse product: it
builds the (mostly full) product as a sparse matrix, cell by cell, on one thread, holding the GIL.
Here each query row scatters its few features' posting lists (users holding that feature) into a
dense accumulator, then keeps its top k while reading back only the touched users (the whole
accumulator when they are many, the list of those touched when few: the course views touch a few
thousand users of a million, so a query costs its postings, not the number of users), in compiled
code, queries spread over all cores (numba).  Timings: docs/benchmarks.md.

Same rules as the dense path: scores rounded to :data:`SCORE_DECIMALS` before ranking, ties by
:func:`~recommender.search.selection.tie_key` of the handles, self excluded, positive only.  Each score is summed in the
query's feature order, so the result does not depend on threads or blocks.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import sparse

from recommender.search.neighbours import SCORE_DECIMALS
from recommender.search.selection import tie_key

_SCALE = 10.0**SCORE_DECIMALS
#: Raw scores below this round to 0 (not a neighbour): skipped without rounding.
_MIN_RAW = np.float32(0.4 / _SCALE)


@numba.njit(cache=True, nogil=True)
def _after(key_a, user_a, key_b, user_b, query, ids):  # pragma: no cover - compiled
    """Whether (key_a, user_a) ranks after (key_b, user_b) for ``query``: key desc, then tie_key asc, then user asc."""
    if key_a != key_b:
        return key_a < key_b
    tie_a, tie_b = tie_key(query, ids[user_a]), tie_key(query, ids[user_b])
    return tie_a > tie_b or (tie_a == tie_b and user_a > user_b)


@numba.njit(cache=True, nogil=True)
def keep_best(key, user, best_key, best_col, filled, k, query, ids):  # pragma: no cover - compiled
    """Insert (key, user) into the k best slots ordered by (key desc, tie_key(query, ids[user]) asc);
    returns the new fill.  ``query`` is the querying user's handle, ``ids`` the handles by column.

    The one top-k insertion of the compiled kernels (the posting lists here, the re-rank).
    """
    if filled == k and _after(key, user, best_key[k - 1], best_col[k - 1], query, ids):
        return filled
    slot = filled if filled < k else k - 1
    while slot > 0 and _after(best_key[slot - 1], best_col[slot - 1], key, user, query, ids):
        best_key[slot] = best_key[slot - 1]
        best_col[slot] = best_col[slot - 1]
        slot -= 1
    best_key[slot] = key
    best_col[slot] = user
    return filled + 1 if filled < k else k


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_k_postings(q_indptr, q_indices, q_data, p_indptr, p_indices, p_data, query_index, n_users, k, parts, signed,
                    ids, out_cols, out_scores):  # pragma: no cover - compiled
    """``signed``: some weights are negative.  Without them a user's sum only grows, so the first
    product that makes it non-zero marks the user as touched, and no separate mark per user is read
    for every product: one random access fewer per product, the same answers (docs/search.md)."""
    n_queries = query_index.shape[0]
    per_part = (n_queries + parts - 1) // parts
    for part in numba.prange(parts):
        acc = np.zeros(n_users, dtype=np.float32)
        # Users a query touched, in touch order: when they are few (very sparse vectors such as
        # course views), only they are read back and cleared, not the whole accumulator.
        touched = np.empty(max(1, n_users // 8), dtype=np.int64)
        seen = np.zeros(n_users, dtype=np.bool_)
        best_key = np.empty(k, dtype=np.int64)
        best_col = np.empty(k, dtype=np.int64)
        cap = n_users // 8
        for q in range(part * per_part, min(n_queries, (part + 1) * per_part)):
            n_touched = 0
            few = True  # tracking stops once the touched users pass the cap
            for jj in range(q_indptr[q], q_indptr[q + 1]):
                feature = q_indices[jj]
                weight = q_data[jj]
                for pp in range(p_indptr[feature], p_indptr[feature + 1]):
                    user = p_indices[pp]
                    if signed:  # a sum can come back to 0: a mark per user
                        first = few and not seen[user]
                        acc[user] += weight * p_data[pp]
                    else:
                        before = acc[user]
                        acc[user] = before + weight * p_data[pp]
                        first = few and before == 0.0 and acc[user] != 0.0
                    if first:
                        if n_touched == cap:
                            few = False
                        else:
                            if signed:
                                seen[user] = True
                            touched[n_touched] = user
                            n_touched += 1
            acc[query_index[q]] = 0.0  # self is never a neighbour
            # Keep the k best by (rounded score desc, tie_key asc): sorted insertion into k slots.
            query = ids[query_index[q]]
            filled = 0
            lower = _MIN_RAW
            for t in range(n_touched if few else n_users):
                user = touched[t] if few else t
                raw = acc[user]
                if raw < lower:
                    continue
                key = np.int64(np.rint(np.float64(raw) * _SCALE))
                if key <= 0:
                    continue
                filled = keep_best(key, user, best_key, best_col, filled, k, query, ids)
                if filled == k:
                    lower = np.float32((best_key[k - 1] - 1) / _SCALE)
            if signed:
                for t in range(n_touched):
                    seen[touched[t]] = False
            if few:
                for t in range(n_touched):
                    acc[touched[t]] = 0.0
            else:
                acc[:] = 0.0
            for slot in range(filled):
                out_cols[q, slot] = best_col[slot]
                out_scores[q, slot] = np.float32(best_key[slot] / _SCALE)


def postings_top_k(
    unit: sparse.csr_matrix, postings: sparse.csr_matrix, query_index: np.ndarray, k: int, threads: int,
    ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(columns, rounded scores) of the top ``k`` users of each query row ``unit[query_index]``.

    ``postings`` is ``unit.T`` as CSR (one row of users per feature), built once per search;
    ``ids`` the users' handles (ties).
    """
    queries = unit[query_index]
    cols = np.full((query_index.size, k), -1, dtype=np.int64)
    scores = np.full((query_index.size, k), np.nan, dtype=np.float32)
    if query_index.size:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        _top_k_postings(
            queries.indptr, queries.indices, queries.data.astype(np.float32, copy=False),
            postings.indptr, postings.indices, postings.data.astype(np.float32, copy=False),
            query_index.astype(np.int64), unit.shape[0], k, max(1, min(threads * 4, query_index.size)),
            bool(unit.nnz) and bool(unit.data.min() < 0), np.ascontiguousarray(ids, dtype=np.int64), cols, scores,
        )
    return cols, scores
