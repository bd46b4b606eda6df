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

The generator does more in the partitions than this search (:mod:`recommender.dask_partitions`:
each also computes its users' reasons and writes their items); it uses the same three pieces:
:meth:`DaskEngine.share` (scatter once), :meth:`DaskEngine.blocks` (where the parts are cut) and
:meth:`DaskEngine.run` (one task per part, retried, all or nothing).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import sparse

from recommender.search.exact import dense_block_rows, exact_top_k
from recommender.search.neighbours import Neighbours

log = logging.getLogger(__name__)

#: Tasks per worker: enough that a slow or retried task does not hold up the whole search.
_TASKS_PER_WORKER = 4
#: Attempts after the first for a task that *raised* (a write whose retries ran out, a lost
#: connection): the task is a pure function of its inputs and its writes are idempotent (same keys),
#: so running it again is harmless.  A task whose worker *died* is rescheduled by the scheduler
#: itself (up to distributed's ``scheduler.allowed-failures``, 3 by default) and does not count here.
RETRIES = 2


def _search_block(rows: np.ndarray, vectors, users: np.ndarray, n: int, block_mb: int, dense_mb: int) -> tuple[np.ndarray, np.ndarray]:
    """One task: the exact top ``n`` of the users ``rows`` against all users (one thread per worker process)."""
    answer = exact_top_k(vectors, users, n, rows=rows, block_mb=block_mb, dense_mb=dense_mb, workers=1)
    return answer.similar, answer.scores


#: What the generator's partitions run: imported on every worker as the engine starts, while the
#: driver loads the tables, instead of by the first task of each worker (seconds of imports, and
#: the numba kernels loaded from their cache).
PRELOAD = ("recommender.dask_partitions", "recommender.models.registry", "recommender.search.postings",
           "recommender.store.table_target")


def _preload(modules: tuple[str, ...]) -> None:
    import importlib

    for module in modules:
        importlib.import_module(module)


class DaskEngine:
    """A Dask client (and, without a scheduler address, its own ``LocalCluster``) that runs partitions of users."""

    def __init__(self, scheduler: str | None = None, workers: int = 2):
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler:
            self.client = Client(scheduler)
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
        log.info("dask engine: %d workers (%s)", self.workers, scheduler or "LocalCluster")
        # One task per worker, not waited for (kept: a released future would be cancelled).
        self._preloads = [self.client.submit(_preload, PRELOAD, workers=[address], pure=False, allow_other_workers=False)
                          for address in self.client.scheduler_info()["workers"]]

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info()["workers"]))

    def share(self, value: Any) -> Any:
        """``value`` on every worker, sent once (not with each task); the future stands for it in tasks."""
        [future] = self.client.scatter([value], broadcast=True, hash=False)
        return future

    def blocks(self, count: int, features: int, n: int, block_mb: int = 256, dense_mb: int = 1024) -> list[np.ndarray]:
        """Row numbers of each part of a search of ``count`` users: ~``_TASKS_PER_WORKER`` per worker.

        Parts are cut on multiples of the dense kernel's block, so that every GEMM is the local engine's.
        """
        block = dense_block_rows(count, features, n, block_mb, dense_mb)
        per_task = block * max(1, -(-count // (block * self.workers * _TASKS_PER_WORKER)))
        return [np.arange(start, min(start + per_task, count)) for start in range(0, count, per_task)]

    def run(self, function: Callable[..., Any], parts: Sequence[Any], *args: Any, name: str = "part") -> list[Any]:
        """``function(part, *args)`` for every part, as tasks; the results in the parts' order.

        All or nothing: the first part that fails for good (after :data:`RETRIES`) raises here, and
        every other task of the call is cancelled.  Task keys start with ``name`` (a test waits for them).
        """
        token = uuid.uuid4().hex[:8]
        futures = [
            self.client.submit(function, part, *args, key=f"{name}-{token}-{i}", pure=False, retries=RETRIES)
            for i, part in enumerate(parts)
        ]
        try:
            return self.client.gather(futures)
        except BaseException:
            self.client.cancel(futures, force=True)
            raise

    def top_k(
        self, vectors: np.ndarray | sparse.spmatrix, users: np.ndarray, n: int, *, block_mb: int = 256, dense_mb: int = 1024
    ) -> Neighbours:
        """The exact search of :func:`~recommender.search.exact.exact_top_k`, partitioned by blocks of users."""
        users = np.asarray(users, dtype=np.int64)
        shared_vectors, shared_users = self.share(vectors), self.share(users)
        blocks = self.blocks(len(users), vectors.shape[1], n, block_mb, dense_mb)
        parts = self.run(_search_block, blocks, shared_vectors, shared_users, n, block_mb, dense_mb, name="search")
        similar = np.concatenate([p[0] for p in parts]) if parts else np.full((0, n), -1, dtype=np.int64)
        scores = np.concatenate([p[1] for p in parts]) if parts else np.full((0, n), np.nan, dtype=np.float32)
        return Neighbours(users, similar, scores)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
