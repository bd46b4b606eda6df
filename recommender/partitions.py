"""A model's search, reasons and writes for one partition of users: what every executor runs.

Why the work is cut by users, and the writes move into the partitions too: a user's top N
depends only on its own row against all vectors, so blocks of users partition freely; and the
driver writing every item is the bound of a large run (one process's write rate is bounded; a
10M-user run has ~50M items), and sending every answer back to it costs a copy of all of them.
So each partition takes a block of users and does, with the same code wherever it runs
(:mod:`recommender.executor`: this process, local worker processes or Dask tasks): its users'
top N from the model's prepared search (:class:`~recommender.search.neighbours.Search`: exact, or
an index the driver trained once and every worker holds one copy of), the model's reasons (:meth:`~recommender.models.base.SimilarityModel.explain`), the items
(:func:`~recommender.store.items.build_items`), written to the sink's partition target (each
writer its own requests or part files) or sent back when the sink has none (a dry run: one file
written in order by the driver).

A partition is a pure function of its inputs and its writes are puts by key (or part files named
by the block's first user), so running one again (a retry, a lost worker) is harmless.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.search import checksum
from recommender.search.neighbours import Neighbours, Search, head
from recommender.store.items import ItemBlock, build_items


@dataclass(frozen=True)
class ModelJob:
    """What every partition of one model needs besides its rows (small: sent with each task)."""

    handle: str
    depth: int  # searched this deep (the ensemble's candidate pool) ...
    top_n: int  # ... and stored this deep
    run_id: str
    generated_at: str
    explain: bool
    keep: bool  # send the block's lists (to ``depth``) back: the ensemble fuses them
    #: Threads of the queries: 1 in a worker process (the processes use the cores), all of them
    #: when the partition runs in the driver's process.
    threads: int = 1
    progress: bool = False


@dataclass
class PartResult:
    """One partition's outcome; ``items`` only when there is no target (the driver writes them)."""

    covered: int
    written: int
    seconds: dict[str, float]
    checksum: tuple[int, int]  # of the block's stored lists (:mod:`recommender.search.checksum`)
    items: ItemBlock | None = None
    lists: Neighbours | None = None


def model_partition(rows: np.ndarray, shared: tuple[Any, Search], job: ModelJob, target: Any) -> PartResult:
    """One partition: the prepared search's answer for the users at ``rows``, their reasons and items, written."""
    model, search = shared
    t0 = time.perf_counter()
    deep = search.query(rows, job.threads, progress=job.progress, desc=job.handle)
    stored = head(deep, job.top_n)
    t1 = time.perf_counter()
    reasons = search.explain(model, stored) if job.explain and stored.covered else None  # nobody to explain
    items = build_items(job.handle, stored, job.run_id, job.generated_at, reasons)
    t2 = time.perf_counter()
    written = target.write(items) if target is not None else 0
    seconds = {"search": t1 - t0, "explain": t2 - t1, "write": time.perf_counter() - t2}
    return PartResult(stored.covered, written, seconds, checksum.parts(stored), None if target is not None else items,
                      deep if job.keep else None)


@dataclass
class ModelOutcome:
    """One model's answer as the pipeline reports it; ``lists`` (to the job's depth) when it was kept."""

    users_covered: int
    items_written: int
    partitions: int
    #: search / explain / write: summed over the partitions (worker-seconds when they ran in parallel)
    seconds: dict[str, float]
    lists_checksum: str  # the same as :func:`~recommender.search.checksum.checksum` of the whole lists
    lists: Neighbours | None
    search: str = "exact"
    recall_at_10: float | None = 1.0


def outcome(results: list[PartResult], users: np.ndarray, job: ModelJob) -> ModelOutcome:
    """The partitions' results of one model, in the order of their rows."""
    lists = None
    if job.keep and results and all(r.lists is not None for r in results):
        lists = Neighbours(np.asarray(users, dtype=np.int64), np.concatenate([r.lists.similar for r in results]),
                           np.concatenate([r.lists.scores for r in results]))
    seconds = {key: sum(r.seconds[key] for r in results) for key in ("search", "explain", "write")}
    return ModelOutcome(sum(r.covered for r in results), sum(r.written for r in results), len(results), seconds,
                        checksum.combine([r.checksum for r in results]), lists)
