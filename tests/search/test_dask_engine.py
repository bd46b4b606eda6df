"""Both executors (this machine's processes, a Dask LocalCluster of 2 worker processes) give the
one-process answer, bit for bit: the same lists, scores and items, however the users are partitioned."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from recommender.executor import DaskExecutor, LocalExecutor
from recommender.models.registry import create_model
from recommender.partitions import ModelJob
from recommender.search.checksum import checksum
from recommender.search.exact import ExactSearch, exact_top_k
from recommender.search.options import SearchOptions
from recommender.topk import prepare_search
from recommender.store.codec import json_line
from tests.conftest import ROOT

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def engine():
    from recommender.search.dask_engine import DaskEngine

    engine = DaskEngine(workers=2)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def processes():
    executor = LocalExecutor(processes=2, min_users=0)  # every model in the 2 worker processes
    yield executor
    executor.close()


class BlockSink:
    """A sink without a partition target (as a dry run): the partitions' items come back to the driver."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.calls = 0

    def target(self) -> None:
        return None

    def write(self, model_handle, items, total=None, progress=False) -> int:
        self.calls += 1
        before = len(self.records)
        self.records.extend(json.loads(json_line(item)) for item in items)
        return len(self.records) - before


def _job(handle: str, explain: bool = True) -> ModelJob:
    return ModelJob(handle, depth=12, top_n=10, run_id="RUN", generated_at="AT", explain=explain, keep=True)


def _exact(model) -> ExactSearch:
    # block_mb=1: ~50 queries per GEMM block, so the search spans many blocks and many partitions.
    return ExactSearch(*model.user_vectors(), 12, block_mb=1)


@pytest.mark.parametrize("handle", ["tfidf_user_interest", "als_collab_filtering_user_course_view"],
                         ids=["sparse-postings", "dense-gemm"])
def test_both_executors_give_the_one_process_lists_and_items(engine, processes, small_tables, handle):
    model = create_model(handle).fit(small_tables)
    vectors, users = model.user_vectors()
    oracle = exact_top_k(vectors, users, 12, block_mb=1)  # the whole search in one call

    answers = {}
    for name, executor in (("in-process", LocalExecutor()), ("processes", processes), ("dask", DaskExecutor(engine))):
        sink = BlockSink()
        done = executor.run_model(model, _job(handle), sink, _exact(model))
        answers[name] = (done, sink)
        np.testing.assert_array_equal(done.lists.users, oracle.users)
        np.testing.assert_array_equal(done.lists.similar, oracle.similar)
        assert done.lists.scores.tobytes() == oracle.scores.tobytes(), name
        assert done.lists_checksum == checksum(done.lists.__class__(oracle.users, oracle.similar[:, :10],
                                                                    oracle.scores[:, :10])), name
    in_process = answers["in-process"]
    assert in_process[0].partitions == 0 and in_process[1].calls == 1
    assert len(in_process[1].records) > 500
    for name in ("processes", "dask"):
        done, sink = answers[name]
        assert done.partitions >= 2 and sink.calls == done.partitions, name
        assert json.dumps(sink.records) == json.dumps(in_process[1].records), name
        assert done.items_written == in_process[0].items_written == len(sink.records)


#: Approximate searches of a few hundred users: every probe and cell setting leaves neighbours out.
_SMALL_ANN = SearchOptions(method="ann", sparse_clusters=8, sparse_probes=2, ann_nprobe=1, recall_sample=200)


@pytest.mark.parametrize("handle", ["tfidf_user_interest", "als_collab_filtering_user_course_view"],
                         ids=["cluster-index", "ivf-index"])
def test_an_index_trained_on_the_driver_is_queried_in_the_partitions(engine, processes, small_tables, handle):
    """The partitions query the driver's prepared index (one copy per worker): its one-process answer, bit for bit."""
    model = create_model(handle).fit(small_tables)
    vectors, users = model.user_vectors()
    prepared = prepare_search(vectors, users, 12, search=_SMALL_ANN)
    assert prepared.method == "ann" and prepared.plan["index"] in ("clusters", "IVFFlat")
    whole = prepared.answer()  # every user in one call, in this process
    assert prepared.recall_at_10 < 1.0, "the index must miss some neighbours, or the test shows nothing"
    records = {}
    for name, executor in (("in-process", LocalExecutor()), ("processes", processes), ("dask", DaskExecutor(engine))):
        sink = BlockSink()
        done = executor.run_model(model, _job(handle), sink, prepared)
        np.testing.assert_array_equal(done.lists.similar, whole.similar)
        assert done.lists.scores.tobytes() == whole.scores.tobytes(), name
        assert (done.search, done.recall_at_10) == ("ann", prepared.recall_at_10)
        records[name] = json.dumps(sink.records)
    assert records["processes"] == records["dask"] == records["in-process"]


def _dry_run(small_dataset, out, *extra: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "run_generator.py", "--data-dir", str(small_dataset), "--models",
         "tfidf_user_interest,knn_collab_filtering_user_course_view", "--search", "exact", "--dry-run", str(out),
         "--no-progress", "--report", str(out.with_suffix(".report.json")), *extra],
        cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for record in records:  # the only fields that differ between two runs of the same data
        record.pop("run_id"), record.pop("generated_at")
    return records


@pytest.mark.slow  # two whole generator runs
def test_generator_dry_run_with_the_dask_engine_writes_the_local_engines_items(small_dataset, tmp_path):
    local = _dry_run(small_dataset, tmp_path / "local.jsonl")
    remote = _dry_run(small_dataset, tmp_path / "dask.jsonl", "--engine", "dask")
    assert len(local) > 1000
    assert json.dumps(remote) == json.dumps(local)


def test_a_worker_killed_mid_search_still_gives_the_whole_answer(engine):
    """Dask reruns the lost worker's partitions on the other (the model is on both): same answer, or an error."""
    import signal
    import threading
    import time

    rng = np.random.default_rng(8)
    model = create_model("als_collab_filtering_user_course_view")  # given vectors: a fitted model's state
    model.vectors_, model.users_ = rng.normal(size=(12_000, 32)).astype(np.float32), np.arange(1, 12_001)
    result: dict = {}
    executor = DaskExecutor(engine)
    search = threading.Thread(target=lambda: result.update(
        answer=executor.run_model(model, _job("als_collab_filtering_user_course_view", explain=False), BlockSink(),
                                  _exact(model)).lists))
    search.start()
    deadline = time.monotonic() + 60
    while not any(engine.client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = sorted(engine.client.run(os.getpid).items())[0][1]
    os.kill(victim, signal.SIGKILL)
    search.join(timeout=300)
    assert not search.is_alive()
    local = exact_top_k(model.vectors_, model.users_, 12, block_mb=1)
    np.testing.assert_array_equal(result["answer"].similar, local.similar)
    assert result["answer"].scores.tobytes() == local.scores.tobytes()
    assert victim not in engine.client.run(os.getpid).values(), "the killed worker was replaced"


def test_the_fusion_runs_in_the_partitions_with_the_one_process_answer_and_reasons(engine, processes, small_tables):
    """The ensemble's fusion, prepared on the driver, fused and explained block by block in the partitions."""
    ensemble = create_model("ensemble_user_similarity")
    models = {h: create_model(h).fit(small_tables) for h in ensemble.components}
    lists = {h: exact_top_k(*m.user_vectors(), ensemble.depth) for h, m in models.items()}
    whole = ensemble.combine(lists, 10, models=models)  # every user fused in one call
    reasons = ensemble.explain(whole)
    records = {}
    for name, executor in (("in-process", LocalExecutor()), ("processes", processes), ("dask", DaskExecutor(engine))):
        sink = BlockSink()
        done = executor.run_model(ensemble, _job("ensemble_user_similarity"), sink, ensemble.prepare(lists, 10, models=models))
        np.testing.assert_array_equal(done.lists.users, whole.users)
        np.testing.assert_array_equal(done.lists.similar, whole.similar)
        assert done.lists.scores.tobytes() == whole.scores.tobytes(), name
        assert done.partitions == (0 if name == "in-process" else len(executor.blocks(len(whole.users))))
        records[name] = sink.records
    assert json.dumps(records["processes"]) == json.dumps(records["dask"]) == json.dumps(records["in-process"])
    rows = {int(u): i for i, u in enumerate(whole.users)}  # the reasons are the whole fusion's, user by user
    for record in records["in-process"]:
        expected = reasons.for_row(rows[record["user_handle"]], len(record["similar_users"]))
        assert [[r["value"] for r in nb] for nb in record["reasons"]] == [[v for _, v, _ in nb] for nb in expected]
    assert any(len(nb) > 1 for record in records["in-process"] for nb in record["reasons"])
