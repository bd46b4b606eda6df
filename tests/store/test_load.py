"""``similar-users-load``: an export into DynamoDB Local with the generator's writer, published as a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from recommender.store.dynamo import DynamoStore
from recommender.store.export import ExportLocation, ExportSink
from recommender.store.publisher import RunPublisher
from tests.conftest import ROOT
from tests.store.test_export import KNN, TFIDF, block, canonical, exported

pytestmark = pytest.mark.dynamodb

RUN = "20260101T000000Z-loadme00"


def export(folder, blocks) -> ExportLocation:
    sink = ExportSink(ExportLocation(str(folder)), part_items=150)
    sink.begin(RUN, tuple(b.model_handle for b in blocks))
    for items in blocks:
        sink.write(items.model_handle, items)
    sink.commit()
    return sink.location


def load(location: ExportLocation, settings) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DYNAMODB_ENDPOINT_URL": settings.dynamodb_endpoint_url,
           "DYNAMODB_TABLE": settings.dynamodb_table, "LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "recommender.cli.load", location.uri], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def scan(store: DynamoStore, table: str) -> list[dict]:
    return store.client.get_paginator("scan").paginate(TableName=table).build_full_result()["Items"]


def test_an_export_loads_into_dynamodb_local_as_the_write_path_would_have_written_it(local_settings, tmp_path):
    blocks = [block(400, TFIDF, RUN), block(350, KNN, RUN, seed=4)]
    store = DynamoStore.for_generator(local_settings)
    written = RunPublisher(store)  # the write path, for the same items, into a table of its own
    written.store.create_table("direct-" + local_settings.dynamodb_table, (("user_handle", "N", "HASH"), ("model_handle", "S", "RANGE")))
    for items in blocks:
        written.writer.write("direct-" + local_settings.dynamodb_table, items)

    location = export(tmp_path / "export", blocks)
    done = load(location, local_settings)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.model_handle: (p.run_id, p.items) for p in store.pointers()} == {TFIDF: (RUN, 400), KNN: (RUN, 350)}
    loaded = scan(store, store.run_table(RUN))
    assert canonical(loaded) == canonical(exported(location)) == canonical(scan(store, "direct-" + local_settings.dynamodb_table))
    reader = DynamoStore.for_api(local_settings.model_copy(update={"pointer_cache_seconds": 0}))
    first = next(iter(blocks[1]))
    assert reader.get(first.user_handle, KNN).explained() == first


def test_an_export_that_disagrees_with_its_manifest_publishes_nothing(local_settings, tmp_path):
    location = export(tmp_path / "export", [block(200, TFIDF, RUN)])
    manifest = json.loads(location.get("manifest.json"))
    manifest["models"][TFIDF]["items"] = 201
    location.put("manifest.json", json.dumps(manifest).encode())
    done = load(location, local_settings)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "200 items, the manifest counts 201" in done.stderr
    store = DynamoStore.for_generator(local_settings)
    assert store.pointers() == []
    assert store.run_table(RUN) not in store.client.list_tables()["TableNames"]


def test_a_folder_without_a_manifest_is_one_error_line(local_settings, tmp_path):
    done = load(ExportLocation(str(tmp_path)), local_settings)
    assert done.returncode == 1 and done.stderr.startswith("error: ") and "manifest.json" in done.stderr
