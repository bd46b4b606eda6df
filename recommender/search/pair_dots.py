"""Dot products of chosen pairs of rows, compiled and spread over the cores: the one home of pair dots.

Two stages need the similarity of many given (row, row) pairs, never a rows × rows product: the
re-rank of approximate candidates (:mod:`recommender.search.rerank`) and the ensemble's re-scoring
of every candidate under each component (:mod:`recommender.models.ensemble`).  Gathering both
rows of every pair (scipy's row indexing, then an element-wise product) copies each row once per
pair and runs on one core; these kernels read the rows in place, one pair per step, and split the
pairs over the cores (numba ``prange``).

The sum is accumulated in ``out``'s dtype: the re-rank keeps its float32 scores, the ensemble its
float64 ones (its fused scores are rounded to ``SCORE_DECIMALS`` and must not move).
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import sparse


@numba.njit(parallel=True, cache=True, nogil=True)
def _sparse_pair_dots(indptr, indices, data, width, a, b, chunks, zero, out):  # pragma: no cover - compiled
    """``out[i]`` = dot of CSR rows ``a[i]`` and ``b[i]``.  Each chunk of pairs scatters its current
    ``a`` row into a dense scratch row once and gathers every ``b`` row against it, so pairs that
    share their first row (a user's candidates, given consecutively) cost only the other row's
    entries, without the branches of a merge.  The products are added in ``b``'s index order, as a
    merge of the two sorted rows would add them."""
    pairs = a.shape[0]
    for chunk in numba.prange(chunks):
        start, stop = chunk * pairs // chunks, (chunk + 1) * pairs // chunks
        scratch = np.zeros(width, dtype=data.dtype)
        current = -1
        for i in range(start, stop):
            if a[i] != current:
                if current >= 0:
                    for p in range(indptr[current], indptr[current + 1]):
                        scratch[indices[p]] = 0
                current = a[i]
                for p in range(indptr[current], indptr[current + 1]):
                    scratch[indices[p]] = data[p]
            total = zero
            for p in range(indptr[b[i]], indptr[b[i] + 1]):
                total += scratch[indices[p]] * data[p]
            out[i] = total


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_products(indptr, indices, data, width, feature, a, b, chunks, out_index, out_value):  # pragma: no cover
    """Per pair ``i``, the ``out_index.shape[1]`` features with the largest positive sum of products
    ``a_j · b_j`` over their columns ``j`` (``feature`` maps columns to features, not decreasing),
    ties by feature; -1 / 0 for none.  The scatter of :func:`_sparse_pair_dots`; ``b``'s columns
    come in order, so a feature's columns are adjacent and features arrive in increasing order."""
    pairs, top = a.shape[0], out_index.shape[1]
    for chunk in numba.prange(chunks):
        start, stop = chunk * pairs // chunks, (chunk + 1) * pairs // chunks
        scratch = np.zeros(width, dtype=data.dtype)
        current = -1
        for i in range(start, stop):
            if a[i] != current:
                if current >= 0:
                    for p in range(indptr[current], indptr[current + 1]):
                        scratch[indices[p]] = 0
                current = a[i]
                for p in range(indptr[current], indptr[current + 1]):
                    scratch[indices[p]] = data[p]
            for r in range(top):
                out_index[i, r], out_value[i, r] = -1, 0.0
            p, end = indptr[b[i]], indptr[b[i] + 1]
            while p < end:
                f = feature[indices[p]]
                value = 0.0
                shared = False
                while p < end and feature[indices[p]] == f:
                    if scratch[indices[p]] != 0:
                        value += scratch[indices[p]] * data[p]
                        shared = True
                    p += 1
                if not shared or value <= 0:
                    continue
                r = top
                while r > 0 and (out_index[i, r - 1] < 0 or value > out_value[i, r - 1]):
                    r -= 1
                if r < top:  # shift the lower ones down, insert at r (an equal value stays above)
                    for q in range(top - 1, r, -1):
                        out_index[i, q], out_value[i, q] = out_index[i, q - 1], out_value[i, q - 1]
                    out_index[i, r], out_value[i, r] = f, value


@numba.njit(parallel=True, cache=True, nogil=True)
def _dense_pair_dots(vectors, rows, cols, zero, out):  # pragma: no cover - compiled
    """``out[i, j]`` = dot of dense rows ``rows[i]`` and ``cols[i, j]``."""
    for i in numba.prange(rows.shape[0]):
        a = rows[i]
        for j in range(cols.shape[1]):
            b = cols[i, j]
            total = zero
            for d in range(vectors.shape[1]):
                total += vectors[a, d] * vectors[b, d]
            out[i, j] = total


def pair_dots(vectors: np.ndarray | sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray,
              dtype: type = np.float64) -> np.ndarray:
    """(len(rows), C) dots of row ``rows[i]`` with rows ``cols[i]`` of ``vectors`` (CSR or dense),
    accumulated and returned in ``dtype``; ``cols`` may be 1-d (one pair per row).  Give the pairs
    of one row together (sorted by ``rows``): the sparse kernel then reads that row once."""
    flat = cols.ndim == 1
    cols = np.ascontiguousarray(cols.reshape(len(rows), -1), dtype=np.int64)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty(cols.shape, dtype=dtype)
    zero = np.dtype(dtype).type(0)
    if sparse.issparse(vectors):
        vectors = sparse.csr_matrix(vectors)
        if not vectors.has_canonical_format:  # the scatter needs each column once per row
            vectors = vectors.copy()
            vectors.sum_duplicates()
        _sparse_pair_dots(vectors.indptr, vectors.indices, vectors.data.astype(dtype, copy=False), vectors.shape[1],
                          np.repeat(rows, cols.shape[1]), cols.ravel(), min(out.size, 64 * numba.get_num_threads()), zero,
                          out.ravel())
    else:
        _dense_pair_dots(np.ascontiguousarray(vectors, dtype=dtype), rows, cols, zero, out)
    return out.ravel() if flat else out


def top_shared_features(unit: sparse.csr_matrix, feature: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                        top: int) -> tuple[np.ndarray, np.ndarray]:
    """(len(rows), top) features and sums of the largest positive contributions ``u_j · v_j`` shared by
    rows ``rows[i]`` and ``cols[i]`` of ``unit`` (columns grouped into features by ``feature``, which
    must not decrease), best first, ties by feature; -1 and 0 where there are fewer."""
    unit = sparse.csr_matrix(unit, dtype=np.float64)
    if not unit.has_canonical_format:
        unit = unit.copy()
        unit.sum_duplicates()
    index = np.empty((len(rows), top), dtype=np.int64)
    value = np.empty((len(rows), top), dtype=np.float64)
    _top_products(unit.indptr, unit.indices, unit.data, unit.shape[1], feature, np.asarray(rows, dtype=np.int64),
                  np.asarray(cols, dtype=np.int64), min(len(rows), 64 * numba.get_num_threads()), index, value)
    return index, value
