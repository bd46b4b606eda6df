"""``--engine dask`` partitions the search, the reasons and the writes: on a LocalCluster of 2 worker
processes against the real DynamoDB Local, the published items are the local engine's, and a worker
SIGKILLed while the partitions write still ends in a whole run (or none: the previous one serves)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from recommender import pipeline
from recommender.store.dynamo import DynamoStore
from recommender.store.jsonl import JsonLinesSink
from recommender.store.publisher import RunPublisher
from recommender.topk import SearchOptions
from tests.conftest import dry_run_records, published

pytest.importorskip("distributed")
pytestmark = [pytest.mark.dynamodb]

#: Every path of the engine: sparse postings (interests, views), dense GEMM (ALS factors), and the
#: ensemble, fused on the driver from its components' partitioned lists and written by partitions.
MODELS = ("tfidf_user_interest", "knn_collab_filtering_user_course_view", "als_collab_filtering_user_course_view",
          "knn_collab_filtering_user_assessment_score", "ensemble_user_similarity")


@pytest.fixture(scope="module")
def engine():
    from recommender.search.dask_engine import DaskEngine

    engine = DaskEngine(workers=2)
    yield engine
    engine.close()


def _publisher(settings, **options) -> RunPublisher:
    return RunPublisher(DynamoStore.for_generator(settings), **options)


def _run(data_dir: Path, sink, engine=None, models=MODELS, top_n: int = 10) -> pipeline.RunReport:
    # block_mb=1: ~50 queries per GEMM block, so that 600 users make several partitions.
    from recommender.executor import DaskExecutor

    return pipeline.run(data_dir, sink, models, top_n, progress=False, search=SearchOptions(method="exact", block_mb=1),
                        executor=DaskExecutor(engine) if engine is not None else None)


def test_a_dask_run_publishes_the_local_engines_items(engine, local_settings, small_dataset):
    local_report = _run(small_dataset, _publisher(local_settings))
    remote_settings = local_settings.model_copy(update={"dynamodb_table": local_settings.dynamodb_table + "_dask"})
    remote_report = _run(small_dataset, _publisher(remote_settings), engine)

    local, remote = published(local_settings), published(remote_settings)
    assert len(local) > 2000 and {model for _, model in local} == set(MODELS)
    assert remote == local
    # The component models were searched, explained and written by partitions; the ensemble's
    # items were fused on the driver and written by partitions too (its item count says so).
    by_model = {m.handle: m for m in remote_report.models}
    assert all(by_model[h].partitions >= 1 for h in MODELS if h != "ensemble_user_similarity")
    assert by_model["tfidf_user_interest"].partitions >= 2
    assert by_model["ensemble_user_similarity"].partitions >= 1
    assert {m.handle: m.items_written for m in remote_report.models} == {m.handle: m.items_written for m in local_report.models}
    # The run reports say so too, without reading the tables back (what make bench-scale compares).
    checksums = {m.handle: m.lists_checksum for m in local_report.models}
    assert len(set(checksums.values())) == len(MODELS)
    assert {m.handle: m.lists_checksum for m in remote_report.models} == checksums
    pointers = {p.model_handle: p.items for p in DynamoStore.for_generator(remote_settings).pointers()}
    assert pointers == {m.handle: m.items_written for m in local_report.models}


def test_a_dask_dry_run_writes_the_local_engines_file_byte_for_byte(engine, small_dataset, tmp_path):
    def dry_run(path: Path, engine=None) -> str:
        report = _run(small_dataset, JsonLinesSink(path), engine)
        return path.read_text().replace(report.run_id, "RUN").replace(report.generated_at, "AT")

    local = dry_run(tmp_path / "local.jsonl")
    remote = dry_run(tmp_path / "dask.jsonl", engine)
    assert local.count("\n") > 2000
    assert remote == local


def test_each_dask_partition_exports_its_own_parts_holding_the_local_engines_items(engine, small_dataset, tmp_path):
    from recommender.store.export import read_part
    from recommender.store.export_location import ExportLocation
    from recommender.store.export_sink import ExportSink

    def export(folder: Path, engine=None) -> tuple[list[str], dict, list[str]]:
        sink = ExportSink(ExportLocation(str(folder)))
        report = _run(small_dataset, sink, engine)
        parts = sink.location.list("data")
        items = sorted(json.dumps(item, sort_keys=True).replace(report.run_id, "RUN").replace(report.generated_at, "AT")
                       for part in parts for item in read_part(sink.location.get(part)))
        return items, json.loads(sink.location.get("manifest.json"))["models"], parts

    local, local_models, local_parts = export(tmp_path / "local")
    remote, remote_models, remote_parts = export(tmp_path / "dask", engine)
    assert len(local) > 2000 and remote == local
    assert remote_models == local_models  # counts and lists checksums
    assert len(local_parts) == len(MODELS) < len(remote_parts)  # one part per partition, written by the workers


def _tables(client, prefix: str) -> set[str]:
    pages = client.get_paginator("list_tables").paginate()
    return {name for page in pages for name in page["TableNames"] if name.startswith(prefix + "-")}


def _first_item_of(client, prefix: str, known: set[str], deadline: float) -> str:
    """The new run table under ``prefix`` (not in ``known``), once it holds an item (the writes have begun)."""
    while time.monotonic() < deadline:
        for name in _tables(client, prefix) - known:
            try:
                if client.scan(TableName=name, Limit=1)["Items"]:
                    return name
            except client.exceptions.ResourceNotFoundException:
                pass
        time.sleep(0.02)
    raise AssertionError("the partitions never started writing")


def test_a_worker_killed_while_the_partitions_write_ends_in_a_whole_run_or_none(engine, local_settings, small_dataset,
                                                                                 tmp_path):
    models = MODELS[:2]
    _run(small_dataset, _publisher(local_settings), models=models, top_n=5)  # the run that serves meanwhile
    before = published(local_settings)
    # The new run stores 7 neighbours (not 5): its items differ from the serving run's, whole or not.
    expected_path = tmp_path / "expected.jsonl"
    expected_report = _run(small_dataset, JsonLinesSink(expected_path), models=models, top_n=7)
    expected = dry_run_records(expected_path)
    assert expected_report and expected != before

    # One writer thread per worker: the writes take long enough to be killed in the middle.
    settings = local_settings.model_copy(update={"write_threads": 1})
    store = DynamoStore.for_generator(settings)
    outcome: dict = {}

    def generate() -> None:
        try:
            outcome["report"] = _run(small_dataset, _publisher(settings, write_threads=1), engine, models=models, top_n=7)
        except Exception as exc:  # noqa: BLE001 - the test checks that a failed run published nothing
            outcome["error"] = exc

    known = _tables(store.client, settings.dynamodb_table)
    run = threading.Thread(target=generate)
    run.start()
    table = _first_item_of(store.client, settings.dynamodb_table, known, time.monotonic() + 120)
    victim = sorted(engine.client.run(os.getpid).items())[0][1]
    os.kill(victim, signal.SIGKILL)
    killed_during_writes = run.is_alive() and not [p for p in store.pointers() if p.table == table]
    run.join(timeout=300)
    assert not run.is_alive()
    assert killed_during_writes, "the run was over before the kill: nothing was tested"

    after = published(local_settings)
    if "error" in outcome:  # none: the previous run keeps serving, whole
        assert after == before, f"a failed run changed what is served: {outcome['error']!r}"
    else:  # whole: every item of the new run, as the local engine computes them
        assert after == expected
        assert {p.table for p in store.pointers()} == {table}
    assert victim not in engine.client.run(os.getpid).values(), "the killed worker was replaced"
    print(f"\nkilled worker {victim} mid-write: {'failed, previous run serves' if 'error' in outcome else 'run complete'}")


def test_an_approximate_search_runs_on_the_driver_and_is_explained_and_written_by_partitions(engine, local_settings, small_dataset,
                                                                               tmp_path):
    models = ("tfidf_user_interest",)
    from recommender.executor import DaskExecutor

    ann = SearchOptions(method="ann", recall_sample=200, sparse_probes=32)  # half the clusters: at the floor on 600 users
    report = pipeline.run(small_dataset, _publisher(local_settings), models, 10, progress=False, search=ann,
                          executor=DaskExecutor(engine))
    pipeline.run(small_dataset, JsonLinesSink(tmp_path / "local.jsonl"), models, 10, progress=False, search=ann)
    assert report.models[0].search == "ann" and report.models[0].partitions >= 2
    expected = dry_run_records(tmp_path / "local.jsonl")
    assert len(expected) > 500 and published(local_settings) == expected
