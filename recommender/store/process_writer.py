"""Writes a model's items from several processes, each with its own client and writer threads.

Why processes: one Python process's writes are bounded by its client's CPU per item, under one
GIL, so a database that takes more needs more processes.  DynamoDB Local on a small machine does
not: it spends more CPU per item than the client, and writer processes were *slower* than the
generator's own threads there (their start and the slices' pickling cost more than a second
client core could win when there is none to spare), hence ``WRITE_PROCESSES=1`` by default
(docs/benchmarks.md, "Write path").

What crosses to a worker is a slice of an :class:`~recommender.store.items.ItemBlock` (a few
arrays, ~600 KB per 1,000 users with reasons), never item objects: the worker builds and encodes
the items itself, so the generator process stays nearly idle while its items are written.  At
most ``2 × processes`` slices are in flight, so memory stays flat whatever the number of users.

Failures are loud: a worker's error (retries exhausted, database gone, a crashed worker) is
raised by :meth:`ProcessWriter.write` in the generator, whose run then fails and is not
published.  :meth:`ProcessWriter.terminate` (on abort, SIGINT, SIGTERM) kills the workers before
the run's table is dropped; workers ignore SIGINT (Ctrl-C reaches the whole process group: the
generator handles it) and exit by themselves if the generator dies (SIGKILL).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tqdm.auto import tqdm

from recommender.store.dynamo import GeneratorClientSpec, StoreUnavailable
from recommender.store.items import ItemBlock
from recommender.store.retry import Backoff
from recommender.store.writer import BatchWriter

log = logging.getLogger(__name__)

#: Users per task: large enough that a task is many requests, small enough to spread evenly.
SLICE_USERS = 1000
#: Fewer items are written by the generator's own threads: starting the workers (Python, boto3,
#: numpy in each) costs more than they save, e.g. in every test run.
MIN_ITEMS = 2000

_writer: BatchWriter | None = None  # one per worker process


def _start_worker(spec: GeneratorClientSpec | None, backoff: Backoff, parent: int) -> None:
    global _writer
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec is not None:  # None: the workers write to targets (an export), not to DynamoDB
        _writer = BatchWriter(spec.client(), spec.threads, backoff)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A SIGKILLed generator cannot stop its workers: they notice and stop writing within a second."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _ready() -> int:
    return os.getpid()


def _write_slice(table: str, block: ItemBlock) -> int:
    assert _writer is not None, "worker not started"
    return _writer.write(table, block)


def _write_target(target: Any, block: ItemBlock) -> int:
    return target.write(block)


class ProcessWriter:
    """A pool of ``processes`` writer processes, started once per run and reused for every model."""

    def __init__(self, spec: GeneratorClientSpec | None, processes: int, backoff: Backoff | None = None,
                 slice_users: int = SLICE_USERS):
        self.spec = spec
        self.processes = max(1, processes)
        self.backoff = backoff or Backoff()
        self.slice_users = slice_users
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the workers (each imports boto3 and opens a client: ~1 s); :meth:`write` does it when needed."""
        if self._pool is None:
            # spawn, not fork: the generator has threads (BLAS, TensorFlow, the lock's heartbeat)
            # and a forked child of a threaded process can inherit a held lock.
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(self.spec, self.backoff, os.getpid()))
            for _ in range(self.processes):
                self._pool.submit(_ready)

    def write(self, table: str, items: ItemBlock, *, total: int | None = None, progress: bool = False,
              desc: str = "write") -> int:
        """Write every item of ``items`` to ``table`` from the workers; the count written, or an exception."""
        return self._run(_write_slice, table, items, total=total, progress=progress, desc=desc, where=table)

    def write_target(self, target: Any, items: ItemBlock, *, total: int | None = None, progress: bool = False,
                     desc: str = "write") -> int:
        """Each worker writes its slices of ``items`` with ``target.write`` (an export: its own part files)."""
        return self._run(_write_target, target, items, total=total, progress=progress, desc=desc, where=str(target))

    def _run(self, task: Any, destination: Any, items: ItemBlock, *, total: int | None, progress: bool, desc: str,
             where: str) -> int:
        self.start()
        assert self._pool is not None
        count = 0
        pending: set[Future] = set()
        with tqdm(total=total, desc=desc, unit="item", disable=not progress, leave=False) as bar:
            try:
                for block in items.split(self.slice_users):
                    if len(pending) >= 2 * self.processes:
                        count += self._collect(pending, bar)
                    pending.add(self._pool.submit(task, destination, block))
                while pending:
                    count += self._collect(pending, bar)
            except BrokenProcessPool as exc:
                self.terminate()
                raise StoreUnavailable(f"a writer process died while writing to {where}: {exc}") from exc
            except BaseException:
                self.terminate()  # a failed slice, SIGINT or SIGTERM: nothing more may reach the table
                raise
        return count

    @staticmethod
    def _collect(pending: set[Future], bar: tqdm) -> int:
        done, still = wait(pending, return_when=FIRST_COMPLETED)
        pending.clear()
        pending.update(still)
        written = sum(future.result() for future in done)
        bar.update(written)
        return written

    def close(self) -> None:
        """Let the workers finish and exit (after a successful write: nothing is pending)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def terminate(self) -> None:
        """Stop the workers at once, mid-request if need be: the run is being abandoned."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(timeout=5)
