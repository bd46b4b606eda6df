"""The local executor's worker processes write the run's table themselves (``TableTarget``), against
the real DynamoDB Local: every item once, as the one-process run stores it; and a worker SIGKILLed
in the middle of its partition's writes fails the run with one line, unpublished, its table and
record gone, no worker left, the previous run serving."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from recommender import pipeline
from recommender.store.dynamo import DynamoStore
from recommender.store.items import ItemBlock
from recommender.store.jsonl import JsonLinesSink
from recommender.store.publisher import RunPublisher, TableTarget, TableWrites
from recommender.topk import SearchOptions
from tests.conftest import dry_run_records, published

pytestmark = pytest.mark.dynamodb

TFIDF, ALS = "tfidf_user_interest", "als_collab_filtering_user_course_view"
#: block_mb=1: ~50 queries per GEMM block, so that 600 users make several partitions.
SEARCH = SearchOptions(method="exact", block_mb=1)


def _executor():
    from recommender.executor import LocalExecutor

    return LocalExecutor(processes=2, min_users=0)  # every model as partitions in 2 worker processes


def _run(data_dir: Path, sink, models: tuple[str, ...], top_n: int, executor=None) -> pipeline.RunReport:
    return pipeline.run(data_dir, sink, models, top_n, progress=False, search=SEARCH, executor=executor)


def _workers(parent: psutil.Process) -> list[psutil.Process]:
    """The spawned worker processes among ``parent``'s children (not multiprocessing's resource tracker)."""
    return [p for p in parent.children() if "spawn_main" in " ".join(p.cmdline())]


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_the_worker_processes_publish_every_item_once_as_the_one_process_run(local_settings, small_dataset, tmp_path):
    _run(small_dataset, JsonLinesSink(tmp_path / "one.jsonl"), (TFIDF, ALS), 10)  # one partition, in this process
    expected = dry_run_records(tmp_path / "one.jsonl")

    store = DynamoStore.for_generator(local_settings)
    executor = _executor()
    try:
        report = _run(small_dataset, RunPublisher(store), (TFIDF, ALS), 10, executor)
    finally:
        executor.close()
    assert all(m.partitions >= 2 for m in report.models), [(m.handle, m.partitions) for m in report.models]
    assert len(expected) > 1000 and published(local_settings) == expected  # nothing written twice, nothing dropped
    assert sum(m.items_written for m in report.models) == len(expected)  # the workers' own counts


@dataclass(frozen=True)
class PausingTarget(TableTarget):
    """The injection point: writes its partition's block, then leaves a file named after its worker's
    pid in ``marker`` and waits there until it is killed, so the run is stopped in the middle of its
    partitions' writes whatever the machine's speed."""

    marker: str = ""

    def write(self, items: ItemBlock) -> int:
        written = super().write(items)
        Path(self.marker, str(os.getpid())).touch()
        threading.Event().wait()
        return written


class PausingWrites(TableWrites):
    def __init__(self, store: DynamoStore, marker: Path):
        super().__init__(store, write_threads=1)
        self.marker = marker

    def target(self) -> PausingTarget:
        target = super().target()
        assert target is not None
        return PausingTarget(target.spec, target.table, target.backoff, marker=str(self.marker))


def test_a_worker_killed_in_the_middle_of_its_writes_fails_the_run_unpublished_and_leaves_no_worker(
        local_settings, small_dataset, tmp_path):
    from recommender.cli.common import FAILED, run_batch

    store = DynamoStore.for_generator(local_settings)
    _run(small_dataset, RunPublisher(store), (TFIDF,), 5)  # the run that serves meanwhile
    (before,) = store.pointers()
    served = published(local_settings)

    marker = tmp_path / "written"
    marker.mkdir()
    executor = _executor()
    sink = RunPublisher(store, PausingWrites(store, marker))
    killed: list[psutil.Process] = []
    workers: list[psutil.Process] = []

    def kill_the_first_worker_that_wrote() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pids = sorted(marker.iterdir())
            if pids:
                workers.extend(_workers(psutil.Process()))
                killed.append(psutil.Process(int(pids[0].name)))
                killed[0].send_signal(signal.SIGKILL)
                return
            time.sleep(0.02)
        for worker in _workers(psutil.Process()):  # never reached the injection point: end the run anyway
            worker.kill()

    killer = threading.Thread(target=kill_the_first_worker_that_wrote)
    killer.start()
    try:  # in the main thread, as the generator runs it (run_batch handles SIGTERM there)
        outcome = run_batch("generator", lambda: _run(small_dataset, sink, (TFIDF,), 7, executor), lambda: sink.published)
    finally:
        killer.join()
        executor.close()
    assert killed, "no worker reached the injection point: nothing was tested"
    assert killed[0] in workers and len(workers) == 2
    assert outcome.code == FAILED and not sink.published
    assert outcome.message is not None and len(outcome.message.splitlines()) == 1
    assert outcome.message.startswith("generator failed: PartitionLost: a worker process died while running "
                                      "partition-tfidf_user_interest"), outcome.message
    assert not _alive(workers)  # the other worker, paused mid-partition, was stopped too
    runs = {r["sk"]: r["status"] for r in store.query_control("run")}
    assert runs == {before.run_id: "complete"}  # the failed run's record went with its table
    assert store.pointers() == [before] and published(local_settings) == served  # nothing of the failed run is visible
    tables = store.client.get_paginator("list_tables").paginate().build_full_result()["TableNames"]
    assert {t for t in tables if t.startswith(store.prefix + "-")} == {store.control_table, before.table}


def test_sigterm_while_the_workers_are_in_their_partitions_stops_the_run_and_every_worker(
        local_settings, small_dataset, tmp_path):
    """SIGTERM reaches the generator while it waits on its workers (both paused at the injection
    point, mid-partition): the run ends as terminated (143), unpublished, with no worker left, and
    the command returns instead of waiting for partitions that will never finish."""
    from recommender.cli.common import TERMINATED, run_batch

    store = DynamoStore.for_generator(local_settings)
    marker = tmp_path / "written"
    marker.mkdir()
    executor = _executor()
    sink = RunPublisher(store, PausingWrites(store, marker))
    workers: list[psutil.Process] = []

    def terminate_once_both_workers_wrote() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(list(marker.iterdir())) >= 2:
                workers.extend(_workers(psutil.Process()))
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.02)

    signaller = threading.Thread(target=terminate_once_both_workers_wrote)
    signaller.start()
    try:
        outcome = run_batch("generator", lambda: _run(small_dataset, sink, (TFIDF,), 7, executor), lambda: sink.published)
    finally:
        signaller.join()
        executor.close()
    assert len(workers) == 2, "the workers never reached the injection point: nothing was tested"
    assert outcome.code == TERMINATED and not sink.published
    assert not _alive(workers)
    assert not [r for r in store.query_control("run") if r["status"] != "complete"]  # its record went with its table
