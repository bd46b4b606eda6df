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
from collections.abc import Iterable

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


class RunPublisher:
    """The sink the pipeline writes through: ``begin`` → ``write`` per model → ``commit`` (or ``abort``)."""

    def __init__(self, store: DynamoStore, *, lease_seconds: float = 120.0, keep_runs: int = 2,
                 write_threads: int = 4, write_processes: int = 1, backoff: Backoff | None = None):
        self.store = store
        self.keep_runs = max(1, keep_runs)
        self.lock = GeneratorLock(store.client, store.control_table, lease_seconds)
        self.writer = BatchWriter(store.client, write_threads, backoff)
        # Writer processes (WRITE_PROCESSES > 1) take a model's items as arrays (ItemBlock), from
        # MIN_ITEMS items on (they start then, once per run: ~1 s); anything else (fewer items, a
        # list of items) is written by the threads of this process.
        self.processes: ProcessWriter | None = None
        if write_processes > 1 and store.client_spec is not None:
            self.processes = ProcessWriter(store.client_spec, write_processes, backoff)
        self.runs = RunRecords(store)
        self.run_id: str | None = None
        self.table: str | None = None
        self.counts: dict[str, int] = {}
        #: The flip's transaction went through: from here on the run must never be aborted.
        self.published = False
        #: What this run created itself (and so what an abort may remove): never another run's.
        self._recorded = False
        self._created: str | None = None

    def begin(self, run_id: str, models: tuple[str, ...]) -> None:
        """Check the run, lock, record it as writing, create its table (both new, or RunExists)."""
        self.models = validate_run(run_id, models)
        self.store.ensure_control_table()
        self.lock.acquire(run_id)
        self.run_id = run_id
        self.runs.started(run_id, self.models)
        self._recorded = True
        self.table = self._open_table(run_id)

    def _open_table(self, run_id: str) -> str:
        """Where the run's items go: its table, created now (the import publisher creates it at commit)."""
        self._created = self.store.create_run_table(run_id)
        return self._created

    def _check_writable(self) -> None:
        if self.table is None:
            raise RuntimeError("begin() first")
        if self.lock.lost:
            raise LockLost("the generator lock was lost; not writing")

    def previous_coverage(self) -> dict[str, int]:
        """Users covered by each model's currently published run (the coverage check's baseline)."""
        return {p.model_handle: p.items for p in self.store.pointers()}

    def write(self, model_handle: str, items: Iterable[StoredItem], total: int | None = None, progress: bool = False) -> int:
        self._check_writable()
        count = self._write(model_handle, items, total, progress)
        self.written(model_handle, count)
        return count

    def _write(self, model_handle: str, items: Iterable[StoredItem], total: int | None, progress: bool) -> int:
        many = isinstance(items, ItemBlock) and len(items) >= MIN_ITEMS
        writer = self.processes if self.processes is not None and many else self.writer
        return writer.write(self.table, items, total=total, progress=progress, desc=f"write {model_handle}")

    def write_attributes(self, model_handle: str, attributes: Iterable[dict[str, dict]]) -> int:
        """Items already as DynamoDB attribute values, all of ``model_handle`` (an export being loaded)."""
        self._check_writable()
        count = self.writer.write_attributes(self.table, attributes, desc=f"load {model_handle}")
        self.written(model_handle, count)
        return count

    def partition_target(self) -> TableTarget | None:
        """What a Dask partition needs to write into this run's table itself (``--engine dask``);
        None without a client spec (a store built by hand): the driver then writes."""
        self._check_writable()
        if self.store.client_spec is None:
            return None
        return TableTarget(self.store.client_spec, self.table, self.writer.backoff)

    def written(self, model_handle: str, count: int) -> None:
        """Count items the partitions wrote (``partition_target``): the pointer records how many a model has."""
        self.counts[model_handle] = self.counts.get(model_handle, 0) + count

    def prepare(self, summary: str = "") -> None:
        """Everything before the flip that may take long: nothing for the write path (the items are in)."""

    def commit(self, summary: str = "") -> None:
        """Flip every written model's pointer to this run, atomically, if we still hold the lock."""
        if self.lock.lost:
            raise LockLost("the generator lock was lost; this run was not published")
        assert self.run_id is not None and self.table is not None, "begin() first"
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
        """Best effort: drop the run's table, then its record (the next run would do it anyway).

        Never after the flip: a published run's table is live."""
        if self.published:
            raise RuntimeError(f"run {self.run_id} is published; it cannot be aborted")
        if self.processes is not None:
            self.processes.terminate()  # before the table goes: no worker may still be writing
        if not self._recorded:  # refused before it was recorded (lock held, the id taken): nothing is ours
            return
        try:
            if self._created:
                self.store.drop_table(self._created)
                self._created = None
            if self._table_may_still_appear():  # its record stays, marked failed, for the next run's clean-up
                self.runs.failed(self.run_id)
            else:
                self.runs.forget(self.run_id)
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not clean up failed run %s: %s", self.run_id, exc)
            try:  # its record stays, marked failed: the next run's clean-up drops what is left
                self.runs.failed(self.run_id)
            except (ClientError, BotoCoreError):
                pass

    def _table_may_still_appear(self) -> bool:
        """Whether the run's table may appear after the abort (an ImportTable cannot be cancelled)."""
        return False

    def cleanup(self) -> list[str]:
        return self.runs.clean_up(self.keep_runs, self.run_id)

    def release_lock(self) -> None:
        """The run is over (published or not): stop the writer processes and free the lock."""
        if self.processes is not None:
            self.processes.close()
        self.lock.release()
