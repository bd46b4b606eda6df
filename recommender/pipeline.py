"""The batch job: load the tables, fit every model, search all users' neighbours, then publish.

Bad input stops the run before the sink is touched.  Everything the run writes goes to the
sink's new version (a run table, a temp file) and becomes visible only at ``commit``, the
commit point (:mod:`recommender.stopping`): any failure or signal before it calls ``abort`` and
readers keep the previous complete run; from it on nothing aborts (a clean-up error is logged
and reported, a signal ends the run as published).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import json
import logging
import os
import resource
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.config import generator_default
from recommender.data.loader import Tables, load_tables
from recommender.executor import Executor, LocalExecutor
from recommender.models.registry import MODEL_HANDLES, create_model, get_spec, run_order, tables_for
from recommender.partitions import ModelJob, ModelOutcome
from recommender.publishing import CoverageError, RunWrite, Sink, publish_run
from recommender.search.options import SearchOptions
from recommender.search.recall import check_recall
from recommender.stopping import StoppedAfterPublish, checkpoint
from recommender.topk import Neighbours, component_lists, prepare_search

log = logging.getLogger(__name__)


@dataclass
class ModelReport:
    handle: str
    users_covered: int = 0
    fit_seconds: float = 0.0
    #: The search's part on the driver: an index trained, the pilot and the recall sample (or the
    #: fusion of a model that fuses others); ``search_seconds`` adds the partitions' queries.
    prepare_seconds: float = 0.0
    search_seconds: float = 0.0
    explain_seconds: float = 0.0
    write_seconds: float = 0.0
    items_written: int = 0
    search: str = "exact"
    #: Approximate search: measured on a sample against exact search; exact search: 1.0.
    recall_at_10: float | None = None
    #: How a search answered on the driver ran: the index and its parameters, the pilot's recall@10
    #: per probe count, ``"fallback": "exact"`` when ``auto`` found no approximate search at the floor.
    search_plan: dict | None = None
    #: Partitions (worker processes or Dask tasks) that searched, explained and wrote this model (0:
    #: this process did), and their wall time; search / explain / write seconds are then summed over them.
    partitions: int = 0
    partitions_seconds: float = 0.0
    #: Of the stored lists (users, neighbours, scores), whatever the engine or partitioning: two runs
    #: that published the same lists have the same checksum (:mod:`recommender.search.checksum`).
    lists_checksum: str = ""
    #: The generator process's resident-memory high-water mark once this model was done (MB): the
    #: model that raises it is the one that sets the run's memory.
    peak_rss_mb: int = 0


@dataclass
class RunReport:
    run_id: str
    generated_at: str
    load_seconds: float = 0.0
    rows_read: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    models: list[ModelReport] = field(default_factory=list)
    publish_seconds: float = 0.0
    removed_runs: list[str] = field(default_factory=list)
    #: The run is published, but removing old runs or releasing the lock failed (the next run
    #: removes them; the lock's lease expires): what failed.
    cleanup_error: str | None = None
    total_seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def new_run_id(now: datetime) -> str:
    """Sortable and unique: UTC time plus a random suffix."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def _log_search(entry: ModelReport, top_n: int) -> None:
    log.info(
        "%s: %s users covered, fit %.1fs, top-%d %s search %.1fs, recall@10 %s",
        entry.handle, f"{entry.users_covered:,}", entry.fit_seconds, top_n, entry.search, entry.search_seconds,
        "1 (exact)" if entry.search == "exact" else f"{entry.recall_at_10:.4f}",
    )
    if entry.search_plan and entry.search_plan.get("fallback"):
        log.info("%s: searched exactly, as no approximate search reached MIN_RECALL (%s)", entry.handle, entry.search_plan)


def run(
    data_dir: Path | str,
    sink: Sink,
    models: tuple[str, ...] = MODEL_HANDLES,
    top_n: int = generator_default("top_n"),
    *,
    progress: bool = True,
    model_params: dict[str, dict] | None = None,
    min_coverage_ratio: float = generator_default("min_coverage_ratio"),
    s3_endpoint_url: str | None = None,
    search: SearchOptions | None = None,
    explain: bool = generator_default("explain"),
    executor: Executor | None = None,
) -> RunReport:
    """Run the whole batch job and return what it did, stage by stage.

    A model that covers no user is never published, nor one that covers less than
    ``min_coverage_ratio`` of the users its current run covers (an export that lost most of its
    rows looks like valid data); ``min_coverage_ratio=0`` forces it.  Either raises
    :class:`CoverageError` and the previous run keeps serving.  An approximate search whose
    sampled recall@10 is under ``search.min_recall`` raises :class:`~recommender.search.recall.RecallTooLow`,
    also before anything of the run is published; under ``search.method`` "auto" it never is (the
    search raises its probes or searches exactly): one floor, the search's and the check's.

    A signal after the flip raises :class:`~recommender.stopping.StoppedAfterPublish` (with this
    report) once the clean-up is done.

    Every model goes through ``executor`` (:mod:`recommender.executor`; default: this machine's
    processes, closed at the end) the same way: only where its partitions run differs.
    """
    started = time.perf_counter()
    search = search or SearchOptions()
    own_executor = executor is None
    executor = executor or LocalExecutor()
    now = datetime.now(UTC).replace(microsecond=0)
    report = RunReport(run_id=new_run_id(now), generated_at=now.isoformat().replace("+00:00", "Z"))
    instances = {handle: create_model(handle, **(model_params or {}).get(handle, {})) for handle in models}
    needed = tables_for(models)

    t0 = time.perf_counter()
    checkpoint("load")
    tables = load_tables(data_dir, needed, s3_endpoint_url=s3_endpoint_url, modelled_only=True)
    report.load_seconds = time.perf_counter() - t0
    report.rows_read, report.dropped = tables.rows_read, tables.dropped
    give_back_memory()

    for handle in models:  # an export whose rows were all dropped: refuse before touching the sink
        for table in get_spec(handle).tables:
            if len(getattr(tables, table)) == 0:
                raise CoverageError(
                    f"model {handle} covers no user: {table} has no usable rows ({tables.rows_read.get(table, 0):,} read, "
                    f"dropped: {tables.dropped.get(table) or 'none'}); not publishing")

    # Each model's lists are kept until the fusion, so that a model that fuses the
    # others' lists (``fuses`` in the registry) builds on them, without a refit; it goes last.
    # The fuser's components are searched to its ``depth`` (its candidate pool) but store their top N.
    kept: dict[str, Neighbours] = {}
    fusers = [instances[h] for h in models if get_spec(h).fuses]
    deeper = {h: max(top_n, int(f.depth)) for f in fusers for h in f.components}
    order = run_order(models)

    def write(run: RunWrite) -> dict[str, int]:
        nonlocal tables
        for position, handle in enumerate(order):
            report.models.append(_run_model(handle, instances, tables, kept, executor, sink, report, search, run,
                                            depth=deeper.get(handle, top_n), top_n=top_n, keep=handle in deeper,
                                            progress=progress, explain=explain,
                                            last_fuser=not any(get_spec(h).fuses for h in order[position + 1:])))
            tables = _release_tables(tables, order[position + 1:], instances, models)
            instances[handle].release(keep_vectors=handle in deeper)  # a fuser's component: its vectors stay
            give_back_memory()
        return {entry.handle: entry.items_written for entry in report.models}

    def summary() -> str:
        nonlocal publish_started
        publish_started = time.perf_counter()
        report.total_seconds = publish_started - started
        return report.to_json()

    publish_started = 0.0
    try:
        done = publish_run(sink, report.run_id, models, write, summary, min_coverage_ratio=min_coverage_ratio)
    finally:
        if own_executor:
            executor.close()
    report.removed_runs, report.cleanup_error = done.removed_runs, done.cleanup_error
    report.publish_seconds = time.perf_counter() - publish_started
    report.total_seconds = time.perf_counter() - started
    if done.signal is not None:
        raise StoppedAfterPublish(report, done.signal)
    return report


def compact(lists: Neighbours) -> Neighbours:
    """``lists`` as a kept list is held until the fusion: handles as int32 when they all fit.

    The ensemble's components are kept at its depth (50) for every user until it fuses them, the
    run's largest holding (12 bytes per neighbour); int32 handles make it 8.
    """
    if lists.similar.dtype == np.int32 or not lists.similar.size or lists.similar.max() > np.iinfo(np.int32).max:
        return lists
    return replace(lists, similar=lists.similar.astype(np.int32))


def give_back_memory() -> None:
    """Return the heap's free pages to the system (glibc ``malloc_trim``) once a stage's arrays are freed.

    Each thread that allocated (numba, faiss, BLAS) leaves an arena of freed but still resident
    memory behind; the next model would otherwise start from the previous one's high-water mark.
    A no-op where the C library has no ``malloc_trim``.
    """
    gc.collect()
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


@functools.cache
def _libc() -> object:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _release_tables(tables: Tables, later: list[str], instances: dict, models: tuple[str, ...]) -> Tables:
    """``tables`` with the frames no later model fits from emptied, so their memory goes back.

    A fuser whose components are in the run fits nothing (it fuses their lists); one running
    alone fits its components from their tables.
    """
    wanted = set()
    for handle in later:
        spec = get_spec(handle)
        if not (spec.fuses and any(c in models for c in instances[handle].components)):
            wanted.update(spec.tables)
    done = {name: frame.iloc[:0] for name, frame in vars(tables).items()
            if isinstance(frame, pd.DataFrame) and name not in wanted and len(frame)}
    return replace(tables, **done) if done else tables


def _run_model(handle: str, instances: dict, tables: object, kept: dict[str, Neighbours], executor: Executor,
               sink: Sink, report: RunReport, search: SearchOptions, run: RunWrite, *, depth: int,
               top_n: int, keep: bool, progress: bool, explain: bool, last_fuser: bool) -> ModelReport:
    """Fit one model and prepare its search on the driver (an index trained, its recall measured and
    checked; a fusion's lists gathered); then the executor's partitions: queries (or the fusion),
    reasons, items, writes."""
    model, spec = instances[handle], get_spec(handle)
    entry = ModelReport(handle)
    t0 = time.perf_counter()
    combines = spec.fuses and any(h in kept for h in model.components)
    if not combines:  # a fuser run without its components fits and searches them itself
        checkpoint("fit")
        model.fit(tables)
    entry.fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    checkpoint("search")
    if combines:  # the components' lists, gathered here; the fusion runs in the partitions
        prepared = model.prepare(kept, top_n, models=instances, release_models=last_fuser)  # no later use of them
        if last_fuser:  # the lists are the fusion's now
            kept.clear()
    elif spec.fuses:  # run without its components: they are fitted and searched here
        prepared = model.prepare(component_lists(model, top_n, search=search, progress=progress), top_n,
                                 models=model.component_models_)
    else:  # the index trained and the recall measured here, once; the queries run in the partitions
        vectors, users = model.user_vectors()
        prepared = prepare_search(vectors, users, depth, search=search, workers=os.cpu_count() or 1, desc=handle)
    give_back_memory()
    driver_seconds = entry.prepare_seconds = time.perf_counter() - t0
    entry.search_plan = prepared.plan
    check_recall(handle, prepared.recall_at_10, search.min_recall)
    job = ModelJob(handle, depth, top_n, report.run_id, report.generated_at, explain, keep=keep, progress=progress)

    def checked(done: ModelOutcome) -> None:
        entry.users_covered, entry.search, entry.recall_at_10 = done.users_covered, done.search, done.recall_at_10
        entry.search_seconds = driver_seconds + done.seconds.get("search", 0.0)
        _log_search(entry, top_n)
        run.check_coverage(handle, done.users_covered)
        checkpoint("write")

    t0 = time.perf_counter()
    done = executor.run_model(model, job, sink, prepared, checked)
    if done.lists is not None:
        kept[handle] = compact(done.lists)
    entry.partitions = done.partitions
    entry.search_seconds = driver_seconds + done.seconds["search"]
    entry.partitions_seconds = time.perf_counter() - t0 if done.partitions else 0.0
    entry.explain_seconds, entry.write_seconds = done.seconds["explain"], done.seconds["write"]
    entry.items_written, entry.lists_checksum = done.items_written, done.lists_checksum
    run.verify(handle, "items written", done.users_covered, done.items_written)  # one item per covered user
    entry.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # Linux: kilobytes
    log.info("%s: wrote %s items in %.1fs (%d partitions), peak RSS so far %s MB", handle, f"{entry.items_written:,}",
             time.perf_counter() - t0, done.partitions, f"{entry.peak_rss_mb:,}")
    return entry
