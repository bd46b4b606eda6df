"""Approximate all-users top-N for sparse vectors: a cluster index on their full vectors, exact scores.

Why not the faiss index for them: it needs dense vectors of modest width, and no projection of
the interest tags keeps their neighbours (every user holds a few tens of ~750 widely shared tags
and the neighbours share under half their tag weight; docs/search.md).  Here nothing is projected:

- a seeded spherical k-means (``clusters`` centroids) is trained on a seeded sample of the unit
  rows, and every user is filed under its most similar centroid (ties: the lower cluster);
- the users are renumbered cluster by cluster (each cluster's users in handle order), so every
  posting list holds each cluster as one contiguous block: the ranges of the blocked posting-list
  kernel (:class:`~recommender.search.postings.RangedPostings`) are the clusters;
- each query walks its feature lists only within the ``probes`` clusters whose centroids are most
  similar to it (ties: the lower cluster), queries taken cluster by cluster so that neighbouring
  queries walk the same blocks.

A user found is scored exactly as the exact search scores it (the same float32 sum in the query's
feature order) and ranked by the same rules (rounded score, then the tie key of the handles; self excluded;
positive only), so with every cluster probed the answer *is* the exact one; fewer probes only
miss users.  Every step is seeded or independent per user, so threads change nothing.

:func:`prepare_clusters` picks the probes by a pilot on the recall sample: the sample's exact answer
(which the recall check needs anyway) is compared with the index's answer for the sample at the
configured probes, raised by half at a time while recall@10 is under the floor; :data:`MAX_PROBE_SHARE` of the
clusters is the most it tries, since walking more costs about what the exact search costs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse
from tqdm.auto import tqdm

from recommender.search.exact import ExactSearch, exact_top_k, unit_rows
from recommender.search.neighbours import Neighbours, Search
from recommender.search.options import SearchOptions
from recommender.search.postings import RangedPostings
from recommender.search.recall import recall_at_k, sample_rows

log = logging.getLogger(__name__)

#: Rows the k-means is trained on: its centroids settle long before a million rows.
TRAIN_SAMPLE = 50_000
#: Lloyd iterations of the k-means (fixed, so that the index does not depend on a tolerance).
KMEANS_ITERATIONS = 12
#: The pilot raises the probes at most to this share of the clusters: beyond it the walk costs
#: about what the exact search does, which then runs instead.
MAX_PROBE_SHARE = 0.5
#: Users per query block (the progress bar moves once per block; bounds the probe masks).
_QUERY_BLOCK = 65536
#: Rows per product with the centroids (bounds the dense similarities held at once).
_ASSIGN_BLOCK = 131072


def _similarities(unit: sparse.csr_matrix, centroids: np.ndarray) -> np.ndarray:
    """Cosine of each unit row with each centroid (rows × clusters, float32)."""
    return np.asarray(unit @ centroids.T, dtype=np.float32)


def _nearest(sims: np.ndarray) -> np.ndarray:
    return sims.argmax(axis=1)  # the first maximum: ties go to the lower cluster


def spherical_kmeans(unit: sparse.csr_matrix, clusters: int, seed: int) -> np.ndarray:
    """Unit centroids (clusters × features, float32) of a seeded spherical k-means on a seeded sample.

    Starts from distinct sampled rows; a cluster left empty keeps its centroid.
    """
    sample = unit[sample_rows(unit.shape[0], TRAIN_SAMPLE, seed)]
    nonzero = np.flatnonzero(np.diff(sample.indptr))
    clusters = max(1, min(clusters, nonzero.size))
    start = np.sort(np.random.default_rng(seed).choice(nonzero, size=clusters, replace=False))
    centroids = sample[start].toarray().astype(np.float32)
    for _ in range(KMEANS_ITERATIONS):
        nearest = _nearest(_similarities(sample, centroids))
        members = sparse.csr_matrix((np.ones(sample.shape[0], dtype=np.float32), (nearest, np.arange(sample.shape[0]))),
                                    shape=(clusters, sample.shape[0]))
        sums = np.asarray((members @ sample).todense(), dtype=np.float32)
        norms = np.linalg.norm(sums, axis=1)
        filled = norms > 0
        centroids[filled] = sums[filled] / norms[filled, None]
    return centroids


def nearest_clusters(unit: sparse.csr_matrix, centroids: np.ndarray, probes: int) -> np.ndarray:
    """Each row's ``probes`` most similar clusters, most similar first, ties by the lower cluster."""
    sims = _similarities(unit, centroids)
    return np.argsort(-sims, axis=1, kind="stable")[:, :probes]


@dataclass
class ClusterIndex:
    """Users renumbered cluster by cluster, and their posting lists cut at the clusters' bounds."""

    centroids: np.ndarray  # (clusters, features) unit rows
    order: np.ndarray  # new number -> user index (cluster by cluster, ascending within each)
    postings: RangedPostings
    seconds: float

    @classmethod
    def build(cls, unit: sparse.csr_matrix, clusters: int, seed: int, ids: np.ndarray | None = None) -> ClusterIndex:
        """``ids``: the users' handles, what ties are broken by (their row numbers when None)."""
        t0 = time.perf_counter()
        centroids = spherical_kmeans(unit, clusters, seed)
        home = np.concatenate([_nearest(_similarities(unit[start:start + _ASSIGN_BLOCK], centroids))
                               for start in range(0, unit.shape[0], _ASSIGN_BLOCK)])
        order = np.argsort(home, kind="stable")
        bounds = np.searchsorted(home[order], np.arange(centroids.shape[0] + 1))
        postings = RangedPostings(unit[order], bounds, labels=order, ids=ids)
        return cls(centroids, order, postings, time.perf_counter() - t0)

    @property
    def clusters(self) -> int:
        return self.centroids.shape[0]

    def top_k(self, unit: sparse.csr_matrix, rows: np.ndarray, k: int, probes: int, threads: int,
              bar: tqdm | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(columns, rounded scores) of the top ``k`` users of the query rows ``rows`` among the
        ``probes`` clusters nearest to each; queries go cluster by cluster (the answer's order is ``rows``')."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.full((rows.size, k), -1, dtype=np.int64)
        scores = np.full((rows.size, k), np.nan, dtype=np.float32)
        position = np.empty(self.order.size, dtype=np.int64)
        position[self.order] = np.arange(self.order.size)
        # Queries in the index's order: those of one cluster probe much the same blocks.
        by_cluster = np.argsort(position[rows], kind="stable")
        probes = max(1, min(probes, self.clusters))
        for start in range(0, rows.size, _QUERY_BLOCK):
            pick = by_cluster[start:start + _QUERY_BLOCK]
            queries = unit[rows[pick]]
            mask = np.zeros((pick.size, self.clusters), dtype=np.bool_)
            np.put_along_axis(mask, nearest_clusters(queries, self.centroids, probes), True, axis=1)
            cols[pick], scores[pick] = self.postings.top_k(queries, position[rows[pick]], k, threads, probe=mask)
            if bar is not None:
                bar.update(pick.size)
        return cols, scores


def probe_steps(first: int, clusters: int) -> list[int]:
    """The probes the pilot tries: ``first``, then half as many again each time, up to
    :data:`MAX_PROBE_SHARE` of the clusters (small steps: a probe too many costs every user)."""
    most = max(1, int(clusters * MAX_PROBE_SHARE))
    steps = [max(1, min(first, clusters))]
    while steps[-1] < most:
        steps.append(min(most, steps[-1] + max(1, steps[-1] // 2)))
    return steps


class ClusterSearch(Search):
    """The cluster index of one model's users with its probes chosen: queries of any rows (a partition's)."""

    method = "ann"

    def __init__(self, index: ClusterIndex, unit: sparse.csr_matrix, users: np.ndarray, n: int, probes: int,
                 recall_at_10: float | None = None, plan: dict | None = None):
        self.index, self.unit, self.users, self.n, self.probes = index, unit, users, n, probes
        self.recall_at_10, self.plan = recall_at_10, plan

    def columns(self, rows: np.ndarray, k: int, threads: int, bar: tqdm) -> tuple[np.ndarray, np.ndarray]:
        return self.index.top_k(self.unit, rows, k, self.probes, threads, bar)


def prepare_clusters(
    vectors: sparse.spmatrix,
    users: np.ndarray,
    n: int = 10,
    *,
    options: SearchOptions,
    pilot: bool = False,
    workers: int = 2,
    desc: str = "top-k",
    stats: dict | None = None,
) -> Search:
    """The cluster index of ``vectors``, its probes chosen and its recall@10 measured on the recall sample.

    ``pilot`` (the ``auto`` search): the probes are raised from ``options.sparse_probes`` until the
    sample's recall@10 reaches ``options.min_recall``; if no probe count up to
    :data:`MAX_PROBE_SHARE` of the clusters does, the search is exact (logged as a warning) and its
    ``plan`` says so.  Without it (``--search ann``) the configured probes are used and the recall
    check judges the answer.  ``stats``, when given, receives the plan and the seconds of each
    stage (benchmarks).  The queries are the returned search's (:meth:`ClusterSearch.query`).
    """
    users = np.asarray(users, dtype=np.int64)
    count = len(users)
    unit = unit_rows(vectors)
    times = {"build": 0.0, "recall": 0.0, "pilot": 0.0}
    if min(n, count - 1) < 1:
        return ExactSearch(vectors, users, n, block_mb=options.block_mb, dense_mb=options.dense_mb)
    index = ClusterIndex.build(unit, options.sparse_clusters, options.seed, users)
    times["build"] = index.seconds
    t0 = time.perf_counter()
    sample = sample_rows(count, options.recall_sample, options.seed)
    exact = exact_top_k(vectors, users, n, rows=sample, workers=workers)  # the same unit rows
    times["recall"] = time.perf_counter() - t0

    def sample_recall(probes: int) -> float:
        found = ClusterSearch(index, unit, users, n, probes).query(sample, workers)
        return recall_at_k(found.similar, found.scores, exact.similar, exact.scores, k=min(10, n))

    probes = min(options.sparse_probes, index.clusters)
    tried: dict[int, float] = {}
    t0 = time.perf_counter()
    for probes in probe_steps(options.sparse_probes, index.clusters) if pilot else [probes]:
        tried[probes] = sample_recall(probes)
        if tried[probes] >= options.min_recall:
            break
    times["pilot"] = time.perf_counter() - t0
    plan = {"index": "clusters", "clusters": index.clusters, "probes": probes, **({"pilot": tried} if pilot else {})}
    if stats is not None:
        stats.update(params=plan, seconds={name: round(value, 2) for name, value in times.items()})
    if pilot and tried[probes] < options.min_recall:
        log.warning("%s: the cluster index reaches recall@10 %.4f at most (%d of %d clusters probed), under "
                    "MIN_RECALL=%s; searching exactly", desc, max(tried.values()), probes, index.clusters,
                    options.min_recall)
        del plan["probes"]
        return ExactSearch(vectors, users, n, block_mb=options.block_mb, dense_mb=options.dense_mb,
                           plan={**plan, "fallback": "exact"})
    log.info("%s: cluster index of %s users, %d clusters built in %.1fs; probing %d, recall@10 %.4f on %s sampled "
             "users against exact search", desc, f"{count:,}", index.clusters, times["build"], probes, tried[probes],
             f"{sample.size:,}")
    return ClusterSearch(index, unit, users, n, probes, tried[probes], plan)


def cluster_top_k(vectors: sparse.spmatrix, users: np.ndarray, n: int = 10, *, options: SearchOptions,
                  pilot: bool = False, workers: int = 2, progress: bool = False, desc: str = "top-k",
                  stats: dict | None = None) -> Neighbours:
    """Every user's ``n`` most similar users by :func:`prepare_clusters`'s search, in this process."""
    search = prepare_clusters(vectors, users, n, options=options, pilot=pilot, workers=workers, desc=desc, stats=stats)
    return search.answer(workers, progress=progress, desc=desc, stats=stats)
