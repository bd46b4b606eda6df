"""A Dask cluster that runs partitions of users: the executor of ``--engine dask``.

Why this split: a user's top N depends only on its own row against all vectors, so the users
partition freely while every partition needs the whole fitted model.  It is scattered to every
worker once per model (:meth:`DaskEngine.share`), not sent with each task; each task runs the same
partition as the local executor (:mod:`recommender.partitions`: the same exact kernels, one thread
per worker process), and the driver takes the results in order.  Each score is computed by the
same kernel in the same order whatever the partition, so the answer is the local one, bit for bit
(``tests/search/test_dask_engine.py``).  A task is a pure function of its inputs, so Dask can retry
a failed or lost one.

Without a scheduler address a ``LocalCluster`` of worker processes is started (and stopped by
:meth:`DaskEngine.close`); with one, the engine joins that cluster (dask-kubernetes, dask-yarn, or
any ``tcp://host:8786``).  :class:`~recommender.executor.DaskExecutor` uses its three pieces:
:meth:`DaskEngine.share` (scatter once), :attr:`DaskEngine.workers` (where the parts are cut) and
:meth:`DaskEngine.run` (one task per part, retried, all or nothing).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: Attempts after the first for a task that *raised* (a write whose retries ran out, a lost
#: connection): the task is a pure function of its inputs and its writes are idempotent (same keys),
#: so running it again is harmless.  A task whose worker *died* is rescheduled by the scheduler
#: itself (up to distributed's ``scheduler.allowed-failures``, 3 by default) and does not count here.
RETRIES = 2


#: What the generator's partitions run: imported on every worker as the engine starts, while the
#: driver loads the tables, instead of by the first task of each worker (seconds of imports, and
#: the numba kernels loaded from their cache).
PRELOAD = ("recommender.executor", "recommender.partitions", "recommender.models.registry", "recommender.search.postings",
           "recommender.store.publisher")


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

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
