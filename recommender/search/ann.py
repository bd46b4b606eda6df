"""Approximate all-users top-N: an HNSW graph (hnswlib) proposes candidates, exact cosine ranks them.

Why HNSW from hnswlib: at 100,000 users it gave the best recall for the time among the maintained
libraries measured here (bench/search.json, README "Search"); its build is deterministic when
single-threaded with a fixed seed, and queries are independent, so they run on all cores and
the published lists stay the same from run to run.

Why a reduced representation: the graph needs dense vectors of modest width.  Vectors wider
than :data:`INDEX_MAX_FEATURES` (~6,000 courses) are reduced by a seeded TruncatedSVD to
``ann_dims`` dimensions; narrower ones (750 tags, 32-d embeddings) go in as they are.  The
reduction only chooses candidates: every candidate is re-scored on the model's own vectors (:mod:`recommender.search.rerank`), and recall
is measured against exact search on those own vectors (:mod:`recommender.search.recall`).
"""

from __future__ import annotations

import logging
import time

import hnswlib
import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize
from tqdm.auto import tqdm

from recommender.search.exact import exact_top_k, unit_rows
from recommender.search.neighbours import Neighbours, empty_answer
from recommender.search.options import SearchOptions
from recommender.search.recall import recall_at_k, sample_rows
from recommender.search.rerank import rerank

log = logging.getLogger(__name__)

#: Vectors up to this many features are indexed as they are; wider ones are reduced first.
INDEX_MAX_FEATURES = 1024
#: Queries per hnswlib call (the progress bar moves once per call).
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


def build_index(data: np.ndarray, options: SearchOptions) -> hnswlib.Index:
    """HNSW graph over ``data`` (inner product of unit vectors = cosine), built on one thread.

    hnswlib's multi-threaded insertion order depends on thread timing, so two builds differ and
    so would the published lists; one thread with a fixed seed builds the same graph every run.
    """
    index = hnswlib.Index(space="ip", dim=data.shape[1])
    index.init_index(max_elements=len(data), M=options.hnsw_m, ef_construction=options.hnsw_ef_construction, random_seed=options.seed)
    index.add_items(data, np.arange(len(data)), num_threads=1)
    return index


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
    index.set_ef(candidates_per_user)
    log.info("%s: HNSW over %s users × %d dims built in %.1fs", desc, f"{count:,}", data.shape[1], time.perf_counter() - t0)
    with tqdm(total=count, desc=f"{desc} (ann)", unit="user", disable=not progress, leave=False) as bar:
        for start in range(0, count, _QUERY_BLOCK):
            rows = np.arange(start, min(start + _QUERY_BLOCK, count))
            labels, _ = index.knn_query(data[rows], k=candidates_per_user, num_threads=workers)
            cols, found = rerank(unit, rows, labels.astype(np.int64), k)
            similar[rows, :k] = np.where(cols >= 0, users[np.maximum(cols, 0)], -1)
            scores[rows, :k] = found
            bar.update(rows.size)
    sample = sample_rows(count, options.recall_sample, options.seed)
    exact = exact_top_k(unit, users, n, rows=sample, block_mb=block_mb, dense_mb=options.dense_mb, workers=workers)
    recall = recall_at_k(similar[sample], scores[sample], exact.similar, exact.scores, k=min(10, n))
    log.info("%s: recall@10 %.4f on %s sampled users against exact search", desc, recall, f"{sample.size:,}")
    return Neighbours(users, similar, scores, method="ann", recall_at_10=recall)
