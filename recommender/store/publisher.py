"""Versioned, atomic publishing of a run into DynamoDB: the sink of every road to the readers
(:mod:`recommender.publishing` drives it; the generator's write and import sinks, ``similar-users-load``).

A run (0) has a valid id and registered models (:func:`~recommender.publishing.validate_run`), (1)
takes the generator lock (:mod:`lock`), (2) records itself as ``writing`` and creates its own
table (:mod:`runs`), both of which must be new: a run id that exists in any state is refused and
left untouched, (3) writes every item there (:mod:`writer`), (4) in one transaction, checks it
still holds the lock, points every model it computed at its table and marks itself
``complete`` (:mod:`control` has the layout), (5) drops the tables of runs no longer needed, and
(6) releases the lock.  Stopped before (4), it removes only what it created itself (its table,
then its record) and the pointers stay on the previous complete run; killed outright (SIGKILL),
its leftovers are dropped by the next run.  (4) is the commit point: after it the run is never
aborted (:mod:`recommender.stopping`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from recommender.publishing import validate_run
from recommender.store.control import Pointer
from recommender.store.dynamo import DynamoStore, GeneratorClientSpec, StoreUnavailable, error_code
from recommender.store.items import ItemBlock, StoredItem
from recommender.store.lock import GeneratorLock, LockHeld, LockLost
from recommender.store.retry import Backoff
from recommender.store.runs import RunRecords
from recommender.store.writer import BatchWriter

log = logging.getLogger(__name__)

__all__ = ["LockHeld", "LockLost", "RunPublisher"]


class TableWrites:
    """How the write path fills a run's table: a new table, then BatchWriteItem from this process's
    threads (what the driver writes), or from each partition's worker through :meth:`target`."""

    def __init__(self, store: DynamoStore, write_threads: int = 4, backoff: Backoff | None = None):
        self.store = store
        self.writer = BatchWriter(store.client, write_threads, backoff)
        self.table: str | None = None
        #: The table this run created (an abort drops it).
        self.created: str | None = None

    def open(self, run_id: str) -> None:
        self.table = self.created = self.store.create_run_table(run_id)

    def write(self, model_handle: str, items: Iterable[StoredItem], total: int | None, progress: bool) -> int:
        return self.writer.write(self.table, items, total=total, progress=progress, desc=f"write {model_handle}")

    def write_attributes(self, model_handle: str, attributes: Iterable[dict[str, dict]]) -> int:
        return self.writer.write_attributes(self.table, attributes, desc=f"load {model_handle}")

    def target(self) -> TableTarget | None:
        """None without a client spec (a store built by hand): the driver then writes."""
        if self.store.client_spec is None:
            return None
        return TableTarget(self.store.client_spec, self.table, self.writer.backoff)

    def fill(self, counts: dict[str, int], summary: str) -> None:
        """Nothing left before the flip: the items are in."""

    def may_still_appear(self) -> bool:
        return False

    def stop(self) -> None:
        """Nothing of its own to stop: the driver's writes end with the call that made them, and the
        partitions' workers are stopped by their executor before the failure reaches the abort."""

    def close(self) -> None:
        pass


_writers: dict[tuple[GeneratorClientSpec, Backoff | None], BatchWriter] = {}  # one per worker process, spec and backoff
_writers_lock = threading.Lock()


@dataclass(frozen=True)
class TableTarget:
    """Where a partition writes its items: the run's table and how to open a client, as plain values.

    Why: the items are written by the worker process that computed them (the driver would otherwise
    receive every item and become the bottleneck: one process's write rate is bounded by its
    client's CPU).  A worker cannot use the driver's publisher (its lock, its clients), so
    :meth:`RunPublisher.target` hands out this picklable description instead, and each worker
    process opens one client for it, reused by every partition it runs; the items go through the
    same :class:`~recommender.store.writer.BatchWriter` and attribute layout as the driver's.

    Writes are ``PutRequest`` by key (``user_handle``, ``model_handle``): a partition run twice (a
    retry, a worker that died half-way) writes the same items again, and nothing is visible before
    the driver's pointer flip anyway."""

    spec: GeneratorClientSpec
    table: str
    backoff: Backoff | None = None

    def write(self, items: ItemBlock) -> int:
        """Write every item of ``items`` (in the worker); the count written, or an exception (the partition fails)."""
        return self._writer().write(self.table, items)

    def _writer(self) -> BatchWriter:
        with _writers_lock:
            key = (self.spec, self.backoff)
            writer = _writers.get(key)
            if writer is None:
                writer = _writers[key] = BatchWriter(self.spec.client(), self.spec.threads, self.backoff)
            return writer


class RunPublisher:
    """The sink of every road to the readers: ``begin`` → ``write`` (or partitions through ``target``)
    → ``commit``, or ``abort``; then ``finish``.  How the run's table is filled is ``fill``'s
    (:class:`TableWrites`, or an ImportTable of an export: :mod:`recommender.store.import_publisher`)."""

    def __init__(self, store: DynamoStore, fill: TableWrites | None = None, *, lease_seconds: float = 120.0,
                 keep_runs: int = 2, write_threads: int = 4, backoff: Backoff | None = None):
        self.store = store
        self.keep_runs = max(1, keep_runs)
        self.lock = GeneratorLock(store.client, store.control_table, lease_seconds)
        self.fill = fill or TableWrites(store, write_threads, backoff)
        self.runs = RunRecords(store)
        self.run_id: str | None = None
        self.table: str | None = None
        self.counts: dict[str, int] = {}
        #: The flip's transaction went through: from here on the run must never be aborted.
        self.published = False
        self._recorded = False  # the run's record is ours (an abort may remove it)

    def begin(self, run_id: str, models: tuple[str, ...]) -> dict[str, int]:
        """Check the run, lock, record it as writing, open its table (record and table must be new,
        or RunExists); the users each model's published run covers (the coverage check's baseline)."""
        self.models = validate_run(run_id, models)
        self.store.ensure_control_table()
        self.runs.refuse_existing(run_id)  # a read, before the lock is taken: a refused run touches nothing
        self.lock.acquire(run_id)
        self.run_id = run_id
        self.runs.started(run_id, self.models)
        self._recorded = True
        self.fill.open(run_id)
        self.table = self.store.run_table(run_id)
        return {p.model_handle: p.items for p in self.store.pointers()}

    def _check_writable(self) -> None:
        if self.table is None:
            raise RuntimeError("begin() first")
        if self.lock.lost:
            raise LockLost("the generator lock was lost; not writing")

    def write(self, model_handle: str, items: Iterable[StoredItem], total: int | None = None, progress: bool = False) -> int:
        self._check_writable()
        return self.fill.write(model_handle, items, total, progress)

    def write_attributes(self, model_handle: str, attributes: Iterable[dict[str, dict]]) -> int:
        """Items already as DynamoDB attribute values, all of ``model_handle`` (an export being loaded)."""
        self._check_writable()
        return self.fill.write_attributes(model_handle, attributes)

    def target(self) -> object | None:
        """Where a partition writes the run's items itself (picklable); None: the driver writes them."""
        self._check_writable()
        return self.fill.target()

    def commit(self, counts: dict[str, int], summary: str = "", at_commit_point: Callable[[], None] = lambda: None) -> None:
        """Fill the table (an import: the long wait, still interruptible), then ``at_commit_point``
        (signals held from here), then flip each model's pointer to this run, atomically, if we
        still hold the lock; ``counts``: each model's items, as its pointer records them."""
        self._check_writable()
        self.counts = dict(counts)
        self.fill.fill(self.counts, summary)
        at_commit_point()
        if self.lock.lost:
            raise LockLost("the generator lock was lost; this run was not published")
        now = int(time.time())
        actions = [self.lock.condition(), self.runs.completed_action(self.run_id, self.counts, summary, now)]
        actions += [
            {"Put": {"TableName": self.store.control_table, "Item": Pointer(model, self.run_id, self.table, count, now).to_item()}}
            for model, count in self.counts.items()
        ]
        try:
            self.store.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise LockLost("the generator lock was taken over before publishing; this run was not published") from exc
            raise StoreUnavailable(f"publishing the run failed: {error_code(exc)}") from exc
        self.published = True
        log.info("published run %s: %s", self.run_id, ", ".join(f"{m} ({c:,} items)" for m, c in self.counts.items()))

    def abort(self) -> None:
        """Best effort: drop the run's table, then its record (the next run would do it anyway);
        the lock is released.  Never after the flip: a published run's table is live."""
        if self.published:
            raise RuntimeError(f"run {self.run_id} is published; it cannot be aborted")
        try:
            self.fill.stop()
            if self._recorded:  # else refused before it was recorded (lock held, the id taken): nothing is ours
                self._remove()
        finally:
            self._release()

    def _remove(self) -> None:
        try:
            if self.fill.created:
                self.store.drop_table(self.fill.created)
                self.fill.created = None
            if self.fill.may_still_appear():  # its record stays, marked failed, for the next run's clean-up
                self.runs.failed(self.run_id)
            else:
                self.runs.forget(self.run_id)
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not clean up failed run %s: %s", self.run_id, exc)
            try:  # its record stays, marked failed: the next run's clean-up drops what is left
                self.runs.failed(self.run_id)
            except (ClientError, BotoCoreError):
                pass

    def finish(self, clean_up: bool = True) -> list[str]:
        """After the flip: drop the runs no longer needed (``clean_up``), then release the lock; the runs removed."""
        try:
            return self.runs.clean_up(self.keep_runs, self.run_id) if clean_up else []
        finally:
            self._release()

    def _release(self) -> None:
        """The run is over (published or not): close the fill (an import: its export) and free the lock."""
        self.fill.close()
        self.lock.release()
