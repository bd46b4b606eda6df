"""Exact top-k for sparse vectors by walking posting lists: cost follows the non-zeros, not users × features.

Why not a dense product: the interest model's rows hold a few tens of its ~750 tags, so a dense
GEMM spends nearly all its multiply-adds on zeros.  Why not scipy's sparse × sparse product: it
builds the (mostly full) product as a sparse matrix, cell by cell, on one thread, holding the GIL.
Here each query row scatters its few features' posting lists (users holding that feature) into a
dense accumulator, then keeps its top k while reading back only the touched users (the whole
accumulator when they are many, the list of those touched when few: the course views touch a few
thousand users of a million, so a query costs its postings, not the number of users), in compiled
code, queries spread over all cores (numba).  Timings: docs/benchmarks.md.

Why ranges of users: an accumulator of a million float32 sums (4 MB) does not stay in a core's L2
cache, and the interests' queries scatter about two sums per user into it.  Cut into ranges of
:data:`RANGE_USERS` (a 256 KiB accumulator), each posting list sorted by user holds every range as
one slice, and a batch of queries walks one range after another: the scatter stays in cache.  The
same ranges, cut at the clusters' bounds of users renumbered by cluster, are what the cluster index
(:mod:`recommender.search.clusters`) walks only in part.

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


#: Users per range of the exact search: a 256 KiB float32 accumulator stays in a core's L2 cache
#: while many queries walk that range of their posting lists.
RANGE_USERS = 1 << 16
#: Queries walked per range at most: their top-k states stay small beside the accumulator.
_RANGE_QUERIES = 512


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_k_ranges(q_indptr, q_indices, q_data, r_ptr, p_indices, p_data, bounds, probe, query_self, labels, ids, k,
                  batch, signed, out_cols, out_scores):  # pragma: no cover - compiled
    """Top k of each query over the ranges of users it probes, range after range.

    Users ``bounds[r]:bounds[r+1]`` form range ``r``; feature ``f``'s postings in it are
    ``p_indices[r_ptr[f, r]:r_ptr[f, r + 1]]``.  A batch of queries walks one range at a time (its
    accumulator is the range's, so it stays in cache), and each query keeps its k best across the
    ranges by (rounded score desc, :func:`tie_key` of the handles ``ids`` of the query's and the user's
    labels asc, then label asc): the order in which the ranges come does
    not change them, nor the sums, which are added in the query's feature order as in a walk of
    the whole lists.  ``signed``: some weights are negative (a sum can come back to 0), so a mark
    per user says whether it was touched; without them the first non-zero sum says so.
    """
    n_queries = q_indptr.shape[0] - 1
    n_ranges = bounds.shape[0] - 1
    widest = 1
    for r in range(n_ranges):
        widest = max(widest, bounds[r + 1] - bounds[r])
    n_batches = (n_queries + batch - 1) // batch
    for b in numba.prange(n_batches):
        q0 = b * batch
        q1 = min(n_queries, q0 + batch)
        acc = np.zeros(widest, dtype=np.float32)
        # Users a query touched in the range, in touch order: when they are few (very sparse
        # vectors such as course views), only they are read back and cleared, not the whole range.
        touched = np.empty(max(1, widest // 8), dtype=np.int64)
        seen = np.zeros(widest, dtype=np.bool_)
        best_key = np.empty((q1 - q0, k), dtype=np.int64)
        best_col = np.empty((q1 - q0, k), dtype=np.int64)
        filled = np.zeros(q1 - q0, dtype=np.int64)
        for r in range(n_ranges):
            lo = bounds[r]
            width = bounds[r + 1] - lo
            cap = width // 8
            for q in range(q0, q1):
                if not probe[q, r]:
                    continue
                i = q - q0
                n_touched = 0
                few = True  # tracking stops once the touched users pass the cap
                for jj in range(q_indptr[q], q_indptr[q + 1]):
                    feature = q_indices[jj]
                    weight = q_data[jj]
                    for pp in range(r_ptr[feature, r], r_ptr[feature, r + 1]):
                        user = p_indices[pp] - lo
                        if signed:
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
                own = query_self[q] - lo
                query = ids[labels[query_self[q]]] if query_self[q] >= 0 else -1
                if 0 <= own < width:
                    acc[own] = 0.0  # self is never a neighbour
                lower = _MIN_RAW
                if filled[i] == k:
                    lower = max(_MIN_RAW, np.float32((best_key[i, k - 1] - 1) / _SCALE))
                for t in range(n_touched if few else width):
                    user = touched[t] if few else t
                    raw = acc[user]
                    if raw < lower:
                        continue
                    key = np.int64(np.rint(np.float64(raw) * _SCALE))
                    if key <= 0:
                        continue
                    filled[i] = keep_best(key, labels[lo + user], best_key[i], best_col[i], filled[i], k, query, ids)
                    if filled[i] == k:
                        lower = max(_MIN_RAW, np.float32((best_key[i, k - 1] - 1) / _SCALE))
                if signed:
                    for t in range(n_touched):
                        seen[touched[t]] = False
                if few:
                    for t in range(n_touched):
                        acc[touched[t]] = 0.0
                else:
                    acc[:width] = 0.0
        for i in range(q1 - q0):
            for slot in range(filled[i]):
                out_cols[q0 + i, slot] = best_col[i, slot]
                out_scores[q0 + i, slot] = np.float32(best_key[i, slot] / _SCALE)


@numba.njit(cache=True, nogil=True)
def _range_pointers(indptr, indices, bounds, out):  # pragma: no cover - compiled
    """``out[f, r]``: where range ``r`` starts in feature ``f``'s sorted list (``out[f, -1]``: its end);
    one pass over the lists, nothing of their size allocated."""
    n_ranges = bounds.shape[0] - 1
    for f in range(indptr.shape[0] - 1):
        pp = indptr[f]
        for r in range(n_ranges):
            while pp < indptr[f + 1] and indices[pp] < bounds[r]:
                pp += 1
            out[f, r] = pp
        out[f, n_ranges] = indptr[f + 1]


class RangedPostings:
    """Posting lists (one row of users per feature) cut at user ``bounds`` into ranges.

    ``unit`` holds unit rows with sorted indices; ``bounds`` (ascending, from 0 to the number of
    users) cut its users into ranges, and ``labels[user]`` is the column a user is reported as (the
    user's own index, unless the rows were reordered: the cluster index); ``ids[label]`` is its handle,
    what ties are broken by (:func:`~recommender.search.selection.tie_key`; the labels themselves when None).
    """

    def __init__(self, unit: sparse.csr_matrix, bounds: np.ndarray, labels: np.ndarray | None = None,
                 ids: np.ndarray | None = None):
        postings = unit.T.tocsr()
        postings.sort_indices()
        self.bounds = np.ascontiguousarray(bounds, dtype=np.int64)
        self.labels = np.arange(unit.shape[0], dtype=np.int64) if labels is None else np.ascontiguousarray(labels, dtype=np.int64)
        self.ids = (np.arange(unit.shape[0], dtype=np.int64) if ids is None
                    else np.ascontiguousarray(ids, dtype=np.int64))
        self.indices = postings.indices
        self.data = postings.data.astype(np.float32, copy=False)
        self.signed = bool(unit.nnz) and bool(unit.data.min() < 0)
        self.r_ptr = np.empty((postings.shape[0], self.bounds.size), dtype=np.int64)
        _range_pointers(postings.indptr.astype(np.int64), postings.indices, self.bounds, self.r_ptr)

    def top_k(self, queries: sparse.csr_matrix, query_self: np.ndarray, k: int, threads: int,
              probe: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(labels, rounded scores) of the top ``k`` users of each query row over the ranges it ``probe``\\ s.

        ``query_self``: each query's own user (excluded; -1 for none); ``probe`` (queries × ranges,
        bool): all ranges when None (the exact search).
        """
        n = queries.shape[0]
        cols = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), np.nan, dtype=np.float32)
        if n == 0:
            return cols, scores
        if probe is None:
            probe = np.ones((n, self.bounds.size - 1), dtype=np.bool_)
        threads = max(1, min(threads, numba.config.NUMBA_NUM_THREADS))
        numba.set_num_threads(threads)
        batch = int(max(1, min(_RANGE_QUERIES, -(-n // (threads * 4)))))
        _top_k_ranges(queries.indptr, queries.indices, queries.data.astype(np.float32, copy=False), self.r_ptr,
                      self.indices, self.data, self.bounds, np.ascontiguousarray(probe, dtype=np.bool_),
                      np.ascontiguousarray(query_self, dtype=np.int64), self.labels, self.ids, k, batch, self.signed,
                      cols, scores)
        return cols, scores


def user_ranges(count: int, width: int = RANGE_USERS) -> np.ndarray:
    """Bounds of consecutive ranges of ``width`` users covering ``count`` users."""
    return np.append(np.arange(0, count, width, dtype=np.int64), np.int64(count)) if count else np.zeros(1, np.int64)
