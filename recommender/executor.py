"""Where a model's partitions of users run: this machine's processes, or a Dask cluster.

The pipeline prepares each model's search on the driver (an index trained once, its recall
measured: :func:`~recommender.topk.prepare_search`) and calls :meth:`Executor.run_model` for every
model the same way; the two executors differ only in where the partitions
(:func:`~recommender.partitions.model_partition`: queries, reasons, items, writes) run:

* :class:`LocalExecutor`: a small model runs as one partition in this process, on every core
  (the kernels' threads), and hands its items to the sink; a large one runs as partitions in
  worker processes (one per core, one thread each), so that the queries, the reasons, the items
  and the sink's writes use every core (these workers are the run's one process pool: a sink's
  writes go to other processes only as partitions, through its ``target()``);
* :class:`DaskExecutor`: every model as Dask tasks (:class:`~recommender.search.dask_engine.DaskEngine`),
  on a LocalCluster or any scheduler.

What stays on the driver: fitting, and preparing each search (training an index, the pilot, the
recall sample; for a model that fuses others, gathering its components' lists of all users).  The
partitions receive the model and its prepared search once per worker (:meth:`Executor.share`: one
pickle file each worker reads, or one Dask scatter), never a copy per task, and the driver drops
its own copy of an index or of the lists meanwhile.  A sink without a partition target (a dry run:
one file written in order) gets the partitions' items back, in order, from the driver.

All or nothing: the driver publishes (the sink's commit) only after every partition of every model
has returned; a partition that failed for good fails the run, which is then never published.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from recommender.partitions import (
    ModelJob, ModelOutcome, model_partition, outcome,
)
from recommender.search.neighbours import Search

log = logging.getLogger(__name__)

#: Partitions per worker: enough that a slow or retried one does not hold up the whole model.
PARTS_PER_WORKER = 4
#: A model of fewer users runs in this process (one partition on every core): starting worker
#: processes and sending them the model costs more than a second core wins on a small model.
LOCAL_PROCESS_MIN_USERS = 50_000


class PartitionLost(RuntimeError):
    """A local worker process died (killed, out of memory) while it ran a partition: the run fails."""


class Executor:
    """Runs one model's partitions; subclasses say where (:meth:`map`) and whether a model stays in this process."""

    workers: int = 1

    def in_process(self, users: int) -> bool:
        """Whether a model of ``users`` users runs as one partition in this process."""
        return False

    def share(self, model: Any) -> Any:
        """``model`` where the partitions run, sent once; what stands for it in :meth:`map`."""
        raise NotImplementedError

    def release(self, shared: Any) -> None:
        """Drop the copies of a shared model."""

    def map(self, function: Callable[..., Any], parts: Sequence[Any], *args: Any, shared: Any = None,
            name: str = "part") -> list[Any]:
        """``function(part, [model,] *args)`` for every part, where the partitions run; results in the parts' order."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def blocks(self, count: int, align: int = 1) -> list[np.ndarray]:
        """Row numbers of each partition of ``count`` users: ~:data:`PARTS_PER_WORKER` per worker, cut
        on multiples of ``align`` (the exact dense kernel's block: every GEMM is then the one-process search's)."""
        per_part = align * max(1, -(-count // (align * self.workers * PARTS_PER_WORKER)))
        return [np.arange(start, min(start + per_part, count)) for start in range(0, count, per_part)]

    def run_model(self, model: Any, job: ModelJob, sink: Any, search: Search,
                  checked: Callable[[ModelOutcome], None] = lambda done: None) -> ModelOutcome:
        """Every user of ``model`` (fitted): its prepared ``search`` (to ``job.depth``; a model that
        fuses others: its fusion) queried in the partitions, then reasons, items and the sink's writes.

        ``checked`` (the pipeline's coverage check) sees the outcome before the driver writes
        anything; partitions that write to the sink's target have written by then (nothing is
        visible before the commit, and a refused run is aborted)."""
        count = len(search.users)
        local = self.in_process(count)
        if local:  # one partition here, on every core
            job = replace(job, threads=max(1, os.cpu_count() or 1))
        parts = [np.arange(count)] if local else self.blocks(count, search.align)
        target = None if local else sink.target()
        if local:
            results = [model_partition(rows, (model, search), job, target) for rows in parts]
        else:
            shared = self.share((model, search))
            search.release()  # the workers hold it now: the driver's copy of an index or lists goes
            try:
                results = self.map(model_partition, parts, job, target, shared=shared, name=f"partition-{job.handle}")
            finally:
                self.release(shared)
        done = outcome(results, search.users, job)
        done.search, done.recall_at_10 = search.method, search.recall_at_10
        done.partitions = 0 if local else len(results)
        checked(done)
        if target is None:  # the driver writes what the partitions sent back, in order
            t0 = time.perf_counter()
            done.items_written = sum(sink.write(job.handle, r.items, total=r.covered, progress=job.progress)
                                     for r in results)
            done.seconds["write"] += time.perf_counter() - t0
        return done

class LocalExecutor(Executor):
    """Partitions on this machine: in this process for a small model, else in ``processes`` worker processes."""

    def __init__(self, processes: int | None = None, min_users: int = LOCAL_PROCESS_MIN_USERS):
        self.workers = max(1, processes or os.cpu_count() or 1)
        self.min_users = min_users
        self._pool = None
        self._folder: Path | None = None

    def in_process(self, users: int) -> bool:
        return self.workers == 1 or users < self.min_users

    def _start(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the driver has threads (BLAS, TensorFlow, a lock's heartbeat).
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(os.getpid(),))
            self._folder = Path(tempfile.mkdtemp(prefix="similar-users-models-"))
        return self._pool

    def share(self, model: Any) -> Path:
        """One pickle of the model in a temporary file that each worker reads once (not one copy per task).

        Its arrays are written out of band (pickle protocol 5): straight from their memory into the
        file, never copied into one large pickle first, which would double the driver's memory for
        the largest model (an index and its vectors) just while it is being sent."""
        self._start()
        assert self._folder is not None
        fd, name = tempfile.mkstemp(dir=self._folder, suffix=".pickle")
        buffers: list[pickle.PickleBuffer] = []
        head = pickle.dumps(model, protocol=5, buffer_callback=buffers.append)
        with os.fdopen(fd, "wb") as out:
            pickle.dump((len(head), [buffer.raw().nbytes for buffer in buffers]), out, protocol=5)
            out.write(head)
            for buffer in buffers:
                out.write(buffer.raw())
        return Path(name)

    def release(self, shared: Path) -> None:
        shared.unlink(missing_ok=True)

    def map(self, function: Callable[..., Any], parts: Sequence[Any], *args: Any, shared: Any = None,
            name: str = "part") -> list[Any]:
        from concurrent.futures import wait

        pool = self._start()
        futures = [pool.submit(_call, function, part, shared, args) for part in parts]
        try:
            return [future.result() for future in futures]
        except BaseException as exc:
            for future in futures:
                future.cancel()
            self.close(kill=True)  # a failed partition, SIGINT or SIGTERM: no worker may write on
            wait(futures)
            if isinstance(exc, BrokenProcessPool):
                raise PartitionLost(f"a worker process died while running {name} ({len(parts)} partitions); "
                                    "nothing of the run is published") from exc
            raise

    def close(self, kill: bool = False) -> None:
        """Stop the worker processes (``kill``: at once, mid-partition) and remove the models' copies."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            if kill:
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


_model: tuple[Path, Any] | None = None  # a worker's copy of the model it works on


def _start_worker(parent: int) -> None:
    """Ctrl-C reaches the whole process group: the driver handles it (and stops the workers), so a
    worker ignores SIGINT; and it exits by itself if the driver dies (SIGKILL), instead of writing on."""
    from threadpoolctl import threadpool_limits

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()
    threadpool_limits(1)  # the processes use the cores, one BLAS thread each


def _exit_with_parent(parent: int) -> None:
    """A SIGKILLed driver cannot stop its workers: they notice and stop within a second."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _call(function: Callable[..., Any], part: Any, shared: Path | None, args: tuple) -> Any:
    global _model
    if shared is None:
        return function(part, *args)
    if _model is None or _model[0] != shared:
        _model = None  # the previous model's copy goes before the next is read
        with open(shared, "rb") as source:
            size, sizes = pickle.load(source)
            head = source.read(size)
            buffers = [bytearray(n) for n in sizes]  # the arrays' memory, filled in place
            for buffer in buffers:
                source.readinto(buffer)
            _model = (shared, pickle.loads(head, buffers=buffers))
    return function(part, _model[1], *args)


class DaskExecutor(Executor):
    """Partitions as Dask tasks on ``engine`` (a LocalCluster, or any scheduler); retried, all or nothing."""

    def __init__(self, engine: Any):
        self.engine = engine

    @property
    def workers(self) -> int:  # type: ignore[override]
        return self.engine.workers

    def share(self, model: Any) -> Any:
        return self.engine.share(model)

    def release(self, shared: Any) -> None:
        self.engine.client.cancel([shared])  # the model's copy on every worker

    def map(self, function: Callable[..., Any], parts: Sequence[Any], *args: Any, shared: Any = None,
            name: str = "part") -> list[Any]:
        return self.engine.run(function, parts, *((shared,) if shared is not None else ()), *args, name=name)

    def close(self) -> None:
        self.engine.close()
