"""A model's search, reasons and writes as Dask partitions of users (``--engine dask``).

Why the writes move into the partitions too: the driver writing every item is the bound of a
large run (one process's write rate is bounded; a 10M-user run has ~50M items), and
sending every answer back to it costs a copy of all of them.  So each task takes a block of users
and does what the local engine does for them, with the same code: the exact top N against all
users (:func:`~recommender.search.exact.exact_top_k`), the model's reasons
(:meth:`~recommender.models.base.SimilarityModel.explain`), the items
(:func:`~recommender.store.items.build_items`), written by the run's batch writer
(:class:`~recommender.store.table_target.TableTarget`).  The fitted model (vectors included) is
scattered to every worker once per model, not sent with each task.

All or nothing: the driver publishes (the pointer flip) only after every partition of every model
has returned; a partition that raised is retried (:data:`~recommender.search.dask_engine.RETRIES`)
and one whose worker died is rescheduled, which is harmless because the writes are puts by key.
If a partition fails for good, the run fails and is never published (its table is dropped).

What stays on the driver, and why:

* the **ensemble** fuses the other models' lists of *all* users (and re-scores each candidate with
  every component's vectors), so it cannot be cut before they are all known: each component's
  partitions send their block's lists (to the ensemble's depth) back, the driver fuses them as the
  local engine does, and the fused items are written by write-only partitions (:func:`write_items`);
* the **approximate search** (HNSW) is one graph of all users built on one thread
  (docs/search.md, *Deterministic*); its answer is explained on the driver and written by write-only partitions;
* a **dry run** writes one local file in order: partitions send their items back and the driver
  writes them (the file is the local engine's, byte for byte but for ``run_id`` / ``generated_at``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.models.ensemble import head
from recommender.search import checksum
from recommender.search.exact import exact_top_k
from recommender.search.neighbours import Neighbours
from recommender.store.items import ItemBlock, build_items

#: Users per write-only partition at most (the ensemble, the approximate search): a slice with its
#: reasons pickles to ~600 KB per 1,000 users, so a task stays a few tens of MB.
WRITE_SLICE_USERS = 50_000


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
    block_mb: int = 256
    dense_mb: int = 1024


@dataclass
class PartResult:
    """One partition's outcome; ``items`` only when there is no target (the driver writes them)."""

    covered: int
    written: int
    seconds: dict[str, float]
    checksum: tuple[int, int]  # of the block's stored lists (:mod:`recommender.search.checksum`)
    items: ItemBlock | None = None
    lists: Neighbours | None = None


def model_partition(rows: np.ndarray, model: Any, job: ModelJob, target: Any) -> PartResult:
    """One task: search, explain and write the users at ``rows`` (one BLAS/numba thread per worker)."""
    t0 = time.perf_counter()
    vectors, users = model.user_vectors()
    deep = exact_top_k(vectors, users, job.depth, rows=rows, block_mb=job.block_mb, dense_mb=job.dense_mb, workers=1)
    answer = head(deep, job.top_n)
    t1 = time.perf_counter()
    reasons = model.explain(answer) if job.explain else None
    items = build_items(job.handle, answer, job.run_id, job.generated_at, reasons)
    t2 = time.perf_counter()
    written = target.write(items) if target is not None else 0
    seconds = {"search": t1 - t0, "explain": t2 - t1, "write": time.perf_counter() - t2}
    return PartResult(answer.covered, written, seconds, checksum.parts(answer), None if target is not None else items,
                      deep if job.keep else None)


@dataclass
class ModelOutcome:
    """The model's answer as the pipeline reports it; ``lists`` (to the job's depth) when it was kept."""

    users_covered: int
    items_written: int
    partitions: int
    seconds: dict[str, float]  # search / explain / write summed over the partitions (worker-seconds)
    lists_checksum: str  # the local engine's checksum of the same lists
    lists: Neighbours | None
    results: list[PartResult]  # items of a run without a target, to be written by the driver in order


def search_explain_write(engine: Any, model: Any, job: ModelJob, target: Any) -> ModelOutcome:
    """Every user of ``model`` (fitted), partitioned on ``engine``: its exact top N, reasons and items."""
    vectors, users = model.user_vectors()
    shared = engine.share(model)
    try:
        blocks = engine.blocks(len(users), vectors.shape[1], job.depth, job.block_mb, job.dense_mb)
        results = engine.run(model_partition, blocks, shared, job, target, name=f"partition-{job.handle}")
    finally:
        engine.client.cancel([shared])  # release the model's copy on every worker
    lists = None
    if job.keep:
        lists = Neighbours(np.asarray(users, dtype=np.int64), *_concatenate(results, job.depth))
    seconds = {key: sum(r.seconds[key] for r in results) for key in ("search", "explain", "write")}
    return ModelOutcome(sum(r.covered for r in results), sum(r.written for r in results), len(results), seconds,
                        checksum.combine([r.checksum for r in results]), lists, results)


def _concatenate(results: list[PartResult], depth: int) -> tuple[np.ndarray, np.ndarray]:
    if not results:
        return np.full((0, depth), -1, dtype=np.int64), np.full((0, depth), np.nan, dtype=np.float32)
    return (np.concatenate([r.lists.similar for r in results]), np.concatenate([r.lists.scores for r in results]))


def _write_slice(items: ItemBlock, target: Any) -> int:
    return target.write(items)


def write_items(engine: Any, items: ItemBlock, target: Any) -> int:
    """Items computed on the driver (ensemble, approximate search), written by partitions of users."""
    per_task = max(1000, min(WRITE_SLICE_USERS, -(-len(items.neighbours.users) // (engine.workers * 4))))
    return sum(engine.run(_write_slice, list(items.split(per_task)), target, name=f"write-{items.model_handle}"))
