"""Where a model's partitions of users run: this machine's processes, or a Dask cluster.

The pipeline calls :meth:`Executor.run_model` for every model the same way; the two executors
differ only in where the partitions (:func:`~recommender.partitions.model_partition`) run:

* :class:`LocalExecutor`: a small model runs as one partition in this process, on every core
  (the exact kernels' threads), and hands its items to the sink; a large one runs as partitions in
  worker processes (one per core, one thread each), so that the reasons, the items and the sink's
  writes use every core too, not only the search (these workers are the run's one process pool:
  a sink's writes go to other processes only as partitions, through its ``target()``);
* :class:`DaskExecutor`: every model as Dask tasks (:class:`~recommender.search.dask_engine.DaskEngine`),
  on a LocalCluster or any scheduler.

What stays on the driver, and why: the answer of a model that fuses others (declared in the
registry: ``ModelSpec.fuses``) needs the other models' lists of *all* users, so it is fused, and
explained, on the driver, and its items are written by write-only partitions; an approximate
search (one faiss IVF index of all users, docs/search.md) is answered on the driver and each partition
receives its block of the answer to explain and write.  A sink without a partition target (a dry
run: one file written in order) gets the partitions' items back, in order, from the driver.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from recommender.models.registry import get_spec
from recommender.partitions import (
    ModelJob, ModelOutcome, PartResult, model_partition, outcome, rows_of, search_rows, write_slice,
)
from recommender.search import checksum
from recommender.search.exact import dense_block_rows
from recommender.search.neighbours import Neighbours, head
from recommender.store.items import build_items

log = logging.getLogger(__name__)

#: Partitions per worker: enough that a slow or retried one does not hold up the whole model.
PARTS_PER_WORKER = 4
#: Users per write-only partition at most (the fused lists): a slice with its reasons pickles to
#: ~600 KB per 1,000 users, so a task stays a few tens of MB.
WRITE_SLICE_USERS = 50_000
#: A model of fewer users runs in this process (one partition on every core): starting worker
#: processes and sending them the model costs more than a second core wins on a small model.
LOCAL_PROCESS_MIN_USERS = 50_000


def _block_partition(part: tuple[np.ndarray, Neighbours | None], model: Any, job: ModelJob, target: Any) -> PartResult:
    rows, answer = part
    return model_partition(rows, model, job, target, answer)


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

    def blocks(self, count: int, features: int | None, job: ModelJob) -> list[np.ndarray]:
        """Row numbers of each partition of ``count`` users: ~:data:`PARTS_PER_WORKER` per worker.

        An exact search (``features`` given) is cut on multiples of the dense kernel's block, so that
        every GEMM is the one-process search's; an answer from the driver anywhere."""
        block = 1 if features is None else dense_block_rows(count, features, job.depth, job.block_mb, job.dense_mb)
        per_part = block * max(1, -(-count // (block * self.workers * PARTS_PER_WORKER)))
        return [np.arange(start, min(start + per_part, count)) for start in range(0, count, per_part)]

    def run_model(self, model: Any, job: ModelJob, sink: Any, answer: Neighbours | None = None,
                  checked: Callable[[ModelOutcome], None] = lambda done: None) -> ModelOutcome:
        """Every user of ``model`` (fitted): exact search in the partitions, or ``answer`` (the driver's,
        to ``job.depth``) cut into them; then reasons, items and the sink's writes.

        ``checked`` (the pipeline's coverage check) sees the outcome before the driver writes
        anything; partitions that write to the sink's target have written by then (nothing is
        visible before the commit, and a refused run is aborted)."""
        if get_spec(job.handle).fuses:
            return self._fused(model, job, sink, answer, checked)
        if answer is None and self.in_process(len(model.user_vectors()[1])):
            # One partition here: search first, so that a refused model (no user covered) is
            # refused before its reasons are computed, as with an answer from the driver.
            t0 = time.perf_counter()
            job = replace(job, threads=max(1, os.cpu_count() or 1))
            answer = search_rows(np.arange(len(model.user_vectors()[1])), model, job)
            return self._run(model, job, sink, answer, checked, searched=time.perf_counter() - t0)
        return self._run(model, job, sink, answer, checked)

    def _run(self, model: Any, job: ModelJob, sink: Any, answer: Neighbours | None,
             checked: Callable[[ModelOutcome], None], searched: float = 0.0) -> ModelOutcome:
        if answer is not None:
            users, features = answer.users, None
        else:
            vectors, users = model.user_vectors()
            features = vectors.shape[1]
        local = self.in_process(len(users))
        parts = [np.arange(len(users))] if local else self.blocks(len(users), features, job)
        if answer is not None:
            stored = head(answer, job.top_n)
            checked(ModelOutcome(stored.covered, 0, 0, {"search": searched}, "", None, answer.method, answer.recall_at_10))
        target = None if local else sink.target()
        work = [(rows, None if answer is None else rows_of(answer, rows)) for rows in parts]
        if local:
            results = [_block_partition(part, model, job, target) for part in work]
        else:
            shared = self.share(model)
            try:
                results = self.map(_block_partition, work, job, target, shared=shared, name=f"partition-{job.handle}")
            finally:
                self.release(shared)
        done = outcome(results, users, job)
        done.seconds["search"] += searched
        if answer is not None:
            done.lists = answer if job.keep else None
            done.search, done.recall_at_10 = answer.method, answer.recall_at_10
        else:
            checked(done)
        done.partitions = 0 if local else len(results)
        if target is None:  # the driver writes what the partitions sent back, in order
            t0 = time.perf_counter()
            done.items_written = sum(sink.write(job.handle, r.items, total=r.covered, progress=job.progress)
                                     for r in results)
            done.seconds["write"] += time.perf_counter() - t0
        return done

    def _fused(self, model: Any, job: ModelJob, sink: Any, answer: Neighbours,
               checked: Callable[[ModelOutcome], None]) -> ModelOutcome:
        """A model that fuses others: its answer and reasons come from the driver; partitions write the items."""
        stored = head(answer, job.top_n)
        done = ModelOutcome(stored.covered, 0, 0, {"search": 0.0, "explain": 0.0, "write": 0.0}, checksum.checksum(stored),
                            answer if job.keep else None, answer.method, answer.recall_at_10)
        checked(done)
        t0 = time.perf_counter()
        reasons = model.explain(stored) if job.explain else None
        items = build_items(job.handle, stored, job.run_id, job.generated_at, reasons)
        t1 = time.perf_counter()
        local = self.in_process(len(stored.users))
        target = None if local else sink.target()
        if target is None:
            written, parts = sink.write(job.handle, items, total=stored.covered, progress=job.progress), 0
        else:
            per_part = max(1000, min(WRITE_SLICE_USERS, -(-len(stored.users) // (self.workers * PARTS_PER_WORKER))))
            slices = list(items.split(per_part))
            written, parts = sum(self.map(write_slice, slices, target, name=f"write-{job.handle}")), len(slices)
        done.items_written, done.partitions = written, parts
        done.seconds.update(explain=t1 - t0, write=time.perf_counter() - t1)
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
        """One pickle of the model in a temporary file that each worker reads once (not one copy per task)."""
        self._start()
        assert self._folder is not None
        fd, name = tempfile.mkstemp(dir=self._folder, suffix=".pickle")
        with os.fdopen(fd, "wb") as out:
            pickle.dump(model, out, protocol=pickle.HIGHEST_PROTOCOL)
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
        except BaseException:
            for future in futures:
                future.cancel()
            self.close(kill=True)  # a failed partition, SIGINT or SIGTERM: no worker may write on
            wait(futures)
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
            _model = (shared, pickle.load(source))
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
