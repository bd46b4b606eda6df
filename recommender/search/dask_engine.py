"""The exact search spread over a Dask cluster: blocks of query users as tasks, vectors shipped once.

Why this split: a user's top N depends only on its own row against all vectors, so the queries
partition freely while every task needs all the vectors.  They are scattered to every worker once
per model (``broadcast``), not sent with each task; each task runs the same exact kernels as the
local engine on its block of queries, and the driver concatenates the blocks in order.  Each
score is computed by the same kernel in the same order whatever the block, so the answer is the
local engine's, bit for bit (``tests/search/test_dask_engine.py`` compares the generator's dry-run
output).  A task is a pure function of its inputs, so Dask can retry a failed or lost one.

Without a scheduler address a ``LocalCluster`` of worker processes is started (and stopped by
:meth:`DaskEngine.close`); with one, the engine joins that cluster (dask-kubernetes, dask-yarn, or
any ``tcp://host:8786``).  The approximate search still runs on the driver.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse

from recommender.search.exact import dense_block_rows, exact_top_k
from recommender.search.neighbours import Neighbours

log = logging.getLogger(__name__)

#: Tasks per worker: enough that a slow or retried task does not hold up the whole search.
_TASKS_PER_WORKER = 4


def _search_block(vectors, users: np.ndarray, n: int, rows: np.ndarray, block_mb: int, dense_mb: int) -> tuple[np.ndarray, np.ndarray]:
    """One task: the exact top ``n`` of the users ``rows`` against all users (one thread per worker process)."""
    answer = exact_top_k(vectors, users, n, rows=rows, block_mb=block_mb, dense_mb=dense_mb, workers=1)
    return answer.similar, answer.scores


class DaskEngine:
    """A Dask client (and, without a scheduler address, its own ``LocalCluster``) for the exact search."""

    def __init__(self, scheduler: str | None = None, workers: int = 2):
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler:
            self.client = Client(scheduler)
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
        log.info("dask engine: %d workers (%s)", self.workers, scheduler or "LocalCluster")

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info()["workers"]))

    def top_k(
        self, vectors: np.ndarray | sparse.spmatrix, users: np.ndarray, n: int, *, block_mb: int = 256, dense_mb: int = 1024
    ) -> Neighbours:
        """The exact search of :func:`~recommender.search.exact.exact_top_k`, partitioned by blocks of users."""
        users = np.asarray(users, dtype=np.int64)
        shared_vectors, shared_users = self.client.scatter([vectors, users], broadcast=True)
        # Parts on multiples of the dense kernel's block, so that every GEMM is the local engine's.
        block = dense_block_rows(len(users), vectors.shape[1], n, block_mb, dense_mb)
        per_task = block * max(1, -(-len(users) // (block * self.workers * _TASKS_PER_WORKER)))
        blocks = [np.arange(start, min(start + per_task, len(users))) for start in range(0, len(users), per_task)]
        futures = [
            self.client.submit(_search_block, shared_vectors, shared_users, n, rows, block_mb, dense_mb, pure=False)
            for rows in blocks
        ]
        parts = self.client.gather(futures)
        similar = np.concatenate([p[0] for p in parts]) if parts else np.full((0, n), -1, dtype=np.int64)
        scores = np.concatenate([p[1] for p in parts]) if parts else np.full((0, n), np.nan, dtype=np.float32)
        return Neighbours(users, similar, scores)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
