"""Approximate all-users top-N: an inverted-file index (faiss IVF) proposes candidates, exact cosine ranks them.

Why IVF and not an HNSW graph: the whole batch must use both cores, and an HNSW graph is only
reproducible when it is built on one thread (its insertion order follows thread timing).  An IVF
index is trained by a seeded k-means (both cores do the assignments), its vectors are filed under
their nearest centroid (independent per vector) and each query scans the ``nprobe`` cells nearest to
it (independent per query), so every stage runs on all cores and the same vectors give the same
candidates from run to run.

Which vectors: dense ones, and those sparse in storage but dense in content (the assessment
percentiles, held by every user).  Sparse vectors (TF-IDF tags, BM25 course views) are searched by
the cluster index on their full vectors instead (:mod:`recommender.search.clusters`): no projection
narrow enough for this index keeps their neighbours (docs/search.md).

Why a projection: the index needs dense vectors of modest width.  Dense vectors up to
:data:`DENSE_AS_IS_MAX` wide (the DNN's embeddings, ALS factors, the assessment percentiles) go in
as they are; wider ones are projected by a seeded randomized TruncatedSVD, fitted on a seeded
sample of rows, to ``ann_dims`` dimensions.  The projection only chooses candidates: each user's
``candidates`` are re-scored on the model's own vectors (:mod:`recommender.search.rerank`), so the
published scores are exact, and recall is measured against exact search on those own vectors
(:mod:`recommender.search.recall`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import faiss
import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize
from tqdm.auto import tqdm

from recommender.search.exact import ExactSearch, exact_top_k, unit_rows
from recommender.search.neighbours import Neighbours, Search
from recommender.search.options import SearchOptions
from recommender.search.recall import recall_at_k, sample_rows
from recommender.search.rerank import rerank

log = logging.getLogger(__name__)

#: Queries per faiss call (the progress bar moves once per call; bounds the candidate arrays).
_QUERY_BLOCK = 16384
#: Training points per IVF cell: faiss's k-means wants at least 39; more only slows the training.
_TRAIN_PER_CELL = 64
#: Rows the projection is fitted on: its components settle long before a million rows.
_PROJECTION_SAMPLE = 200_000
#: Dense vectors up to this wide go into the index as they are (assessment percentiles: 108).
DENSE_AS_IS_MAX = 256


@dataclass(frozen=True)
class IvfPlan:
    """What the index of one search looks like: dimensions, cells, cells probed, candidates per user."""

    dims: int
    projected: bool
    nlist: int
    nprobe: int
    candidates: int

    def as_dict(self) -> dict[str, object]:
        return {"index": "IVFFlat", "dims": self.dims, "projected": self.projected, "nlist": self.nlist,
                "nprobe": self.nprobe, "candidates": self.candidates}


def plan(count: int, features: int, k: int, options: SearchOptions) -> IvfPlan:
    """Index shape for ``count`` users: nlist ~ ``ann_cells_per_sqrt`` × sqrt(users), clamped.

    Cells of about sqrt(users) vectors balance the two costs of a query, finding the nearest cells
    (nlist centroids) and scanning them (nprobe × users / nlist vectors).  ``ann_candidates`` per
    user, never fewer than k + 1 (self is among them) nor more than there are users.  Vectors up
    to :data:`DENSE_AS_IS_MAX` wide go in as they are, wider ones are projected to ``ann_dims``.
    """
    projected = features > DENSE_AS_IS_MAX
    dims = min(options.ann_dims, features) if projected else features
    nlist = int(np.clip(round(options.ann_cells_per_sqrt * math.sqrt(count)), 1, max(1, count // 39)))
    candidates = int(min(count, max(options.ann_candidates, k + 1)))
    return IvfPlan(dims=max(1, dims), projected=projected, nlist=nlist, nprobe=min(nlist, options.ann_nprobe),
                   candidates=candidates)


def index_vectors(unit: np.ndarray | sparse.csr_matrix, ivf: IvfPlan, seed: int) -> np.ndarray:
    """Dense float32 unit vectors for the index: as they are, or projected (seeded TruncatedSVD)."""
    if not ivf.projected:
        return np.ascontiguousarray(unit.toarray() if sparse.issparse(unit) else unit, dtype=np.float32)
    components = max(1, min(ivf.dims, unit.shape[1] - 1))
    sample = sample_rows(unit.shape[0], _PROJECTION_SAMPLE, seed)
    svd = TruncatedSVD(n_components=components, algorithm="randomized", random_state=seed).fit(unit[sample])
    reduced = np.asarray(unit @ svd.components_.T.astype(np.float32), dtype=np.float32)
    return np.ascontiguousarray(normalize(reduced), dtype=np.float32)


def build_index(data: np.ndarray, ivf: IvfPlan, seed: int) -> faiss.IndexIVFFlat:
    """IVF index of ``data`` (inner product of unit vectors = cosine), trained by seeded spherical k-means."""
    quantizer = faiss.IndexFlatIP(data.shape[1])
    index = faiss.IndexIVFFlat(quantizer, data.shape[1], ivf.nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.spherical = True
    index.cp.max_points_per_centroid = _TRAIN_PER_CELL
    train = data[sample_rows(data.shape[0], ivf.nlist * _TRAIN_PER_CELL, seed)]
    index.train(train)
    index.add(data)
    index.nprobe = ivf.nprobe
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


class IvfSearch(Search):
    """A trained IVF index of one model's users: candidates for any rows (a partition's), re-ranked exactly."""

    method = "ann"

    def __init__(self, index: faiss.IndexIVFFlat, data: np.ndarray, unit: np.ndarray | sparse.csr_matrix,
                 users: np.ndarray, n: int, ivf: IvfPlan):
        self.index, self.data, self.unit, self.users, self.n, self.ivf = index, data, unit, users, n, ivf
        self.recall_at_10, self.plan = None, ivf.as_dict()

    def columns(self, rows: np.ndarray, k: int, threads: int, bar: tqdm) -> tuple[np.ndarray, np.ndarray]:
        cols = np.full((rows.size, k), -1, dtype=np.int64)
        scores = np.full((rows.size, k), np.nan, dtype=np.float32)
        with _omp_threads(threads):
            for start in range(0, rows.size, _QUERY_BLOCK):
                block = rows[start:start + _QUERY_BLOCK]
                _, labels = self.index.search(self.data[block], self.ivf.candidates)
                cols[start:start + block.size], scores[start:start + block.size] = rerank(self.unit, block, labels, k,
                                                                                          self.users)
                bar.update(block.size)
        return cols, scores


def prepare_ivf(
    vectors: np.ndarray | sparse.spmatrix,
    users: np.ndarray,
    n: int = 10,
    *,
    options: SearchOptions,
    workers: int = 2,
    desc: str = "top-k",
    stats: dict | None = None,
) -> Search:
    """The IVF index of ``vectors`` trained and filled, its recall@10 measured on the recall sample
    against exact search; the queries are the returned search's (:meth:`IvfSearch.query`).

    ``stats``, when given, receives the index plan and the seconds of each stage (benchmarks).
    """
    users = np.asarray(users, dtype=np.int64)
    count = len(users)
    k = min(n, count - 1)
    if k < 1:
        return ExactSearch(vectors, users, n, block_mb=options.block_mb, dense_mb=options.dense_mb)
    unit = unit_rows(vectors)
    ivf = plan(count, unit.shape[1], k, options)
    t0 = time.perf_counter()
    with _omp_threads(workers):
        data = index_vectors(unit, ivf, options.seed)
        index = build_index(data, ivf, options.seed)
    build = time.perf_counter() - t0
    log.info("%s: IVF %s over %s users built in %.1fs", desc, ivf.as_dict(), f"{count:,}", build)
    search = IvfSearch(index, data, unit, users, n, ivf)
    t1 = time.perf_counter()
    sample = sample_rows(count, options.recall_sample, options.seed)
    exact = exact_top_k(unit, users, n, rows=sample, block_mb=options.block_mb, dense_mb=options.dense_mb, workers=workers)
    found = search.query(sample, workers)
    search.recall_at_10 = recall_at_k(found.similar, found.scores, exact.similar, exact.scores, k=min(10, n))
    log.info("%s: recall@10 %.4f on %s sampled users against exact search", desc, search.recall_at_10, f"{sample.size:,}")
    if stats is not None:
        stats.update(params=ivf.as_dict(), seconds={"build": round(build, 2), "recall": round(time.perf_counter() - t1, 2)})
    return search


def ann_top_k(vectors: np.ndarray | sparse.spmatrix, users: np.ndarray, n: int = 10, *, options: SearchOptions,
              workers: int = 2, progress: bool = False, desc: str = "top-k", stats: dict | None = None) -> Neighbours:
    """Every user's ``n`` most similar users by :func:`prepare_ivf`'s search, in this process."""
    search = prepare_ivf(vectors, users, n, options=options, workers=workers, desc=desc, stats=stats)
    return search.answer(workers, progress=progress, desc=desc, stats=stats)
