"""Where a Dask partition writes its items: the run's table and how to open a client, as plain values.

Why a separate object: with ``--engine dask`` the items are written by the worker that computed
them (the driver would otherwise receive every item and become the bottleneck: one process's
write rate is bounded).  A worker cannot use the driver's publisher (its lock, its clients), so
the publisher hands out this picklable description instead (:meth:`RunPublisher.target`)
and each worker process opens one client for it, reused by every partition it runs.  The items
go through the same :class:`~recommender.store.writer.BatchWriter` and the same attribute layout
(:mod:`recommender.store.items`) as the local engine's.

Writes are ``PutRequest`` by key (``user_handle``, ``model_handle``): a partition run twice (a
retry, a worker that died half-way) writes the same items again, and nothing is visible before the
driver's pointer flip anyway.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from recommender.store.dynamo import GeneratorClientSpec
from recommender.store.items import ItemBlock
from recommender.store.retry import Backoff
from recommender.store.writer import BatchWriter

_writers: dict[tuple[GeneratorClientSpec, Backoff | None], BatchWriter] = {}  # one per worker process, spec and backoff
_lock = threading.Lock()


@dataclass(frozen=True)
class TableTarget:
    """The run's table and the client settings to reach it; ``write`` runs in the worker process."""

    spec: GeneratorClientSpec
    table: str
    backoff: Backoff | None = None

    def write(self, items: ItemBlock) -> int:
        """Write every item of ``items``; the count written, or an exception (the task then fails)."""
        return self._writer().write(self.table, items)

    def _writer(self) -> BatchWriter:
        with _lock:
            key = (self.spec, self.backoff)
            writer = _writers.get(key)
            if writer is None:
                writer = _writers[key] = BatchWriter(self.spec.client(), self.spec.threads, self.backoff)
            return writer
