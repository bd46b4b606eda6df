"""Writer processes against the real DynamoDB Local: every item once, and failures that fail the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from recommender.reasons import Explanations
from recommender.store.dynamo import DynamoStore, StoreUnavailable
from recommender.store.items import StoredItem, build_items
from recommender.store.process_writer import MIN_ITEMS, ProcessWriter
from recommender.topk import Neighbours
from tests.conftest import ROOT

pytestmark = pytest.mark.dynamodb

TFIDF = "tfidf_user_interest"


def block(users: int, run_id: str = "20260101T000000Z-procs000"):
    """``users`` users with up to 10 neighbours (some fewer, some none) and reasons from 40 tag names."""
    rng = np.random.default_rng(5)
    handles = np.arange(1, users + 1, dtype=np.int64) * 7
    similar = rng.integers(1, 10**12, size=(users, 10), dtype=np.int64)
    scores = np.sort(rng.random((users, 10), dtype=np.float32), axis=1)[:, ::-1]
    width = rng.integers(0, 11, size=users)  # neighbours per user: 0..10, padded at the end
    similar[np.arange(10) >= width[:, None]] = -1
    scores[similar < 0] = np.nan
    index = rng.integers(-1, 40, size=(users, 10, 3))
    weight = np.round(rng.random((users, 10, 3)), 3)
    names = np.array([f"tag-{i}" for i in range(40)])
    return build_items(TFIDF, Neighbours(handles, similar, np.ascontiguousarray(scores)), run_id, "2026-01-01T00:00:00Z",
                       Explanations("tag", names, index, weight))


def writer_processes(parent: psutil.Process) -> list[psutil.Process]:
    """The spawned workers among ``parent``'s children (not multiprocessing's resource tracker)."""
    return [p for p in parent.children() if "spawn_main" in " ".join(p.cmdline())]


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def scan(store: DynamoStore, table: str) -> list[StoredItem]:
    pages = store.client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [StoredItem.from_dynamo(item) for page in pages for item in page["Items"]]


def test_processes_write_every_item_exactly_once(local_settings):
    store = DynamoStore.for_generator(local_settings)
    items = block(2300)
    table = store.create_run_table(items.run_id)
    writer = ProcessWriter(store.client_spec, processes=2, slice_users=170)  # 14 slices over 2 processes
    try:
        written = writer.write(table, items)
        workers = writer_processes(psutil.Process())
    finally:
        writer.close()
    expected = sorted(items, key=lambda i: i.user_handle)
    assert 0 < len(expected) < 2300  # users without a neighbour are not written
    assert written == len(expected)  # the workers' own counts: nothing sent twice, nothing dropped
    assert sorted(scan(store, table), key=lambda i: i.user_handle) == expected
    assert len(workers) == 2 and not alive(workers)


def test_a_failing_worker_fails_the_write_loudly_and_leaves_no_worker(local_settings):
    store = DynamoStore.for_generator(local_settings)
    writer = ProcessWriter(store.client_spec, processes=2, slice_users=100)
    writer.start()
    workers = writer_processes(psutil.Process())
    with pytest.raises(StoreUnavailable, match="no_such_table.*ResourceNotFoundException"):
        writer.write(f"{local_settings.dynamodb_table}-no_such_table", block(500))
    assert len(workers) == 2 and not alive(workers)


@pytest.fixture(scope="module")
def dataset_2500(tmp_path_factory):
    """Enough users for the generator to hand a model's items to writer processes (MIN_ITEMS)."""
    from recommender_tools.datagen import generate

    out = tmp_path_factory.mktemp("data_2500")
    generate(out, users=2500, seed=3, communities=6)
    return out


def test_a_killed_writer_process_fails_the_run_with_exit_1_and_the_previous_run_serves(local_settings, dataset_2500, tmp_path):
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": local_settings.dynamodb_endpoint_url,
           "DYNAMODB_TABLE": local_settings.dynamodb_table, "RUN_REPORT_DIR": str(tmp_path), "WRITE_PROCESSES": "2",
           "LOG_LEVEL": "INFO"}
    command = [sys.executable, "run_generator.py", "--no-progress", "--data-dir", str(dataset_2500), "--models", TFIDF]
    assert subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300).returncode == 0
    store = DynamoStore.for_generator(local_settings)
    (before,) = store.pointers()
    assert before.items >= MIN_ITEMS  # so the items went through writer processes

    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        victims: list[psutil.Process] = []
        while not victims and time.monotonic() < deadline and proc.poll() is None:
            victims = writer_processes(psutil.Process(proc.pid))
            time.sleep(0.02)
        assert victims, "no writer process appeared"
        workers = writer_processes(psutil.Process(proc.pid))
        victims[0].send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("error: a writer process died while writing to ")
    runs = {r["sk"]: r["status"] for r in store.query_control("run")}
    assert runs == {before.run_id: "complete"}  # the failed run's record went with its table
    assert store.pointers() == [before]  # nothing of the failed run is visible
    tables = store.client.get_paginator("list_tables").paginate().build_full_result()["TableNames"]
    assert {t for t in tables if t.startswith(store.prefix + "-")} == {store.control_table, before.table}
    assert not alive(workers)
