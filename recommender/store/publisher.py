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
import time
from collections.abc import Callable, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from recommender.publishing import validate_run
from recommender.store.control import Pointer
from recommender.store.dynamo import DynamoStore, StoreUnavailable, error_code
from recommender.store.items import ItemBlock, StoredItem
from recommender.store.lock import GeneratorLock, LockHeld, LockLost
from recommender.store.process_writer import MIN_ITEMS, ProcessWriter
from recommender.store.retry import Backoff
from recommender.store.runs import RunRecords
from recommender.store.table_target import TableTarget
from recommender.store.writer import BatchWriter

log = logging.getLogger(__name__)

__all__ = ["LockHeld", "LockLost", "RunPublisher"]


class TableWrites:
    """How the write path fills a run's table: a new table, then BatchWriteItem from this process's
    threads, or from writer processes for a large block; Dask partitions get a :class:`TableTarget`."""

    def __init__(self, store: DynamoStore, write_threads: int = 4, write_processes: int = 1, backoff: Backoff | None = None):
        self.store = store
        self.writer = BatchWriter(store.client, write_threads, backoff)
        # Writer processes (WRITE_PROCESSES > 1) take a model's items as arrays (ItemBlock), from
        # MIN_ITEMS items on (they start then, once per run: ~1 s); anything else (fewer items, a
        # list of items) is written by the threads of this process.
        self.processes: ProcessWriter | None = None
        if write_processes > 1 and store.client_spec is not None:
            self.processes = ProcessWriter(store.client_spec, write_processes, backoff)
        self.table: str | None = None
        #: The table this run created (an abort drops it).
        self.created: str | None = None

    def open(self, run_id: str) -> None:
        self.table = self.created = self.store.create_run_table(run_id)

    def write(self, model_handle: str, items: Iterable[StoredItem], total: int | None, progress: bool) -> int:
        many = isinstance(items, ItemBlock) and len(items) >= MIN_ITEMS
        writer = self.processes if self.processes is not None and many else self.writer
        return writer.write(self.table, items, total=total, progress=progress, desc=f"write {model_handle}")

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
        if self.processes is not None:
            self.processes.terminate()  # before the table goes: no worker may still be writing

    def close(self) -> None:
        if self.processes is not None:
            self.processes.close()


class RunPublisher:
    """The sink of every road to the readers: ``begin`` → ``write`` (or partitions through ``target``)
    → ``commit``, or ``abort``; then ``finish``.  How the run's table is filled is ``fill``'s
    (:class:`TableWrites`, or an ImportTable of an export: :mod:`recommender.store.import_publisher`)."""

    def __init__(self, store: DynamoStore, fill: TableWrites | None = None, *, lease_seconds: float = 120.0,
                 keep_runs: int = 2, write_threads: int = 4, write_processes: int = 1, backoff: Backoff | None = None):
        self.store = store
        self.keep_runs = max(1, keep_runs)
        self.lock = GeneratorLock(store.client, store.control_table, lease_seconds)
        self.fill = fill or TableWrites(store, write_threads, write_processes, backoff)
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
        """The run is over (published or not): stop the writer processes and free the lock."""
        self.fill.close()
        self.lock.release()
