"""Approximate all-users top-N: an HNSW graph (faiss) proposes candidates, exact cosine ranks them.

Why faiss's HNSW: it found the same neighbours as hnswlib's with the same graph parameters, faster
on the wide interest vectors (docs/benchmarks.md, docs/design.md), and faiss-cpu is maintained
and ships wheels where hnswlib compiles from source.  The graph is built on one thread (faiss's level draws are seeded, and a
single-threaded insertion order is fixed), so the same vectors give the same graph; queries are
independent and run on all cores, so the published lists stay the same from run to run.

Why a reduced representation: the graph needs dense vectors of modest width.  Vectors wider
than :data:`INDEX_MAX_FEATURES` (~6,000 courses) are reduced by a seeded TruncatedSVD to
``ann_dims`` dimensions; narrower ones (750 tags, 32-d embeddings) go in as they are.  The
reduction only chooses candidates: every candidate is re-scored on the model's own vectors (:mod:`recommender.search.rerank`), and recall
is measured against exact search on those own vectors (:mod:`recommender.search.recall`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import faiss
import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize
from tqdm.auto import tqdm

from recommender.search.exact import exact_top_k, unit_rows
from recommender.search.neighbours import Neighbours, empty_answer
from recommender.search.options import INDEX_MAX_FEATURES, SearchOptions
from recommender.search.recall import recall_at_k, sample_rows
from recommender.search.rerank import rerank

log = logging.getLogger(__name__)

#: Queries per faiss call (the progress bar moves once per call).
_QUERY_BLOCK = 8192


def index_vectors(unit: np.ndarray | sparse.csr_matrix, dims: int, seed: int) -> np.ndarray:
    """Dense unit vectors for the graph.

    Up to :data:`INDEX_MAX_FEATURES` features the vectors go in as they are (made dense): the
    interest model's 750 tags reduced to 128 or 300 SVD dimensions gave candidates with recall@10
    0.50 / 0.76 after re-ranking, as they are 0.99 (20,000 users).  Wider vectors are reduced by a
    seeded TruncatedSVD to ``dims`` dimensions.
    """
    if unit.shape[1] <= INDEX_MAX_FEATURES:
        dense = unit.toarray() if sparse.issparse(unit) else unit
        return np.ascontiguousarray(dense, dtype=np.float32)
    components = max(1, min(dims, unit.shape[1] - 1))
    reduced = TruncatedSVD(n_components=components, algorithm="randomized", random_state=seed).fit_transform(unit)
    return np.ascontiguousarray(normalize(reduced), dtype=np.float32)


def build_index(data: np.ndarray, options: SearchOptions) -> faiss.IndexHNSWFlat:
    """HNSW graph over ``data`` (inner product of unit vectors = cosine), built on one thread.

    A multi-threaded insertion order depends on thread timing, so two builds could differ and so
    would the published lists; the build is pinned to one thread.
    """
    index = faiss.IndexHNSWFlat(data.shape[1], options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = options.hnsw_ef_construction
    with _omp_threads(1):
        index.add(data)
    return index


@contextmanager
def _omp_threads(count: int) -> Iterator[None]:
    """faiss's OpenMP threads for the duration of the block (it is a process-wide setting)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(1, count))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def ann_top_k(
    vectors: np.ndarray | sparse.spmatrix,
    users: np.ndarray,
    n: int = 10,
    *,
    options: SearchOptions,
    block_mb: int = 256,
    workers: int = 2,
    progress: bool = False,
    desc: str = "top-k",
) -> Neighbours:
    """Every user's ``n`` most similar users, approximately; recall@10 measured on a sample."""
    users = np.asarray(users, dtype=np.int64)
    count = len(users)
    similar, scores = empty_answer(users, n)
    if count < 2 or n < 1:
        return Neighbours(users, similar, scores, method="ann")
    k = min(n, count - 1)
    unit = unit_rows(vectors)
    t0 = time.perf_counter()
    data = index_vectors(unit, options.ann_dims, options.seed)
    index = build_index(data, options)
    candidates_per_user = min(count, max(options.hnsw_ef, k + 1))
    index.hnsw.efSearch = candidates_per_user
    log.info("%s: HNSW over %s users × %d dims built in %.1fs", desc, f"{count:,}", data.shape[1], time.perf_counter() - t0)
    with _omp_threads(workers), tqdm(total=count, desc=f"{desc} (ann)", unit="user", disable=not progress, leave=False) as bar:
        for start in range(0, count, _QUERY_BLOCK):
            rows = np.arange(start, min(start + _QUERY_BLOCK, count))
            _, labels = index.search(data[rows], candidates_per_user)
            cols, found = rerank(unit, rows, labels.astype(np.int64), k)
            similar[rows, :k] = np.where(cols >= 0, users[np.maximum(cols, 0)], -1)
            scores[rows, :k] = found
            bar.update(rows.size)
    sample = sample_rows(count, options.recall_sample, options.seed)
    exact = exact_top_k(unit, users, n, rows=sample, block_mb=block_mb, dense_mb=options.dense_mb, workers=workers)
    recall = recall_at_k(similar[sample], scores[sample], exact.similar, exact.scores, k=min(10, n))
    log.info("%s: recall@10 %.4f on %s sampled users against exact search", desc, recall, f"{sample.size:,}")
    return Neighbours(users, similar, scores, method="ann", recall_at_10=recall)
