"""Exports in ImportTable's format, publishing by ImportTable (moto for S3 and DynamoDB), and loading an export.

moto stands in for AWS: in-process (``mock_aws``) for the failure cases, and as a real
``moto_server`` process for the generator and API command lines.  Its ImportTable parses lines
with a toy JSON reader that cannot read escaped quotes (our packed reasons), so both run with
:mod:`tests.moto_import_fix` (one ``json.loads`` per line, the rest of moto unchanged).
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import boto3
import numpy as np
import pytest
from moto import mock_aws

from recommender import pipeline
from recommender.reasons import Explanations
from recommender.store.codec import dynamo_items, explained, from_dynamo, json_line
from recommender.store.dynamo import DynamoStore
from recommender.store.export import ExportTarget, read_part
from recommender.store.export_location import ExportFailed, ExportLocation
from recommender.store.export_sink import ExportSink
from recommender.store.import_publisher import ImportFailed, import_publisher
from recommender.store.publisher import RunPublisher
from recommender.store.items import StoredItem, build_items
from recommender.topk import Neighbours
from tests import moto_import_fix
from tests.conftest import ROOT, local_settings_class, publish

TFIDF, KNN = "tfidf_user_interest", "knn_collab_filtering_user_course_view"
MODELS = (TFIDF, KNN)
BUCKET = "nightly-bucket"


def block(users: int, model: str = TFIDF, run_id: str = "20260101T000000Z-export00", seed: int = 3):
    """A model's items as the search leaves them, with reasons whose names need JSON escaping."""
    rng = np.random.default_rng(seed)
    n = 5
    similar = rng.integers(1, users + 1, size=(users, n))
    similar[::7, 3:] = -1  # some users with fewer neighbours
    scores = np.where(similar >= 0, np.sort(rng.random((users, n)), axis=1)[:, ::-1], np.nan).astype(np.float32)
    names = np.array(['c#', "it's", 'say "hi"', "naïve \\ path", "python"])
    index = np.where(rng.random((users, n, 3)) < 0.6, rng.integers(0, len(names), size=(users, n, 3)), -1)
    explanations = Explanations("tag", names, index, rng.random((users, n, 3)).round(3))
    neighbours = Neighbours(np.arange(1, users + 1, dtype=np.int64), similar.astype(np.int64), scores)
    return build_items(model, neighbours, run_id, "2026-01-01T00:00:00Z", explanations)


def exported(location: ExportLocation) -> list[dict]:
    return [item for part in location.list("data") for item in read_part(location.get(part))]


def canonical(items) -> Counter:
    return Counter(json.dumps(item, sort_keys=True) for item in items)


# -- the export format ---------------------------------------------------------------------------

def test_export_holds_exactly_the_items_the_write_path_puts(tmp_path):
    items = block(700)
    sink = ExportSink(ExportLocation(str(tmp_path / "export")), part_items=300)
    sink.begin(items.run_id, (TFIDF,))
    assert sink.write(TFIDF, items) == len(items)
    sink.commit({TFIDF: len(items)})
    location = sink.location
    manifest = json.loads(location.get("manifest.json"))
    assert canonical(exported(location)) == canonical(dynamo_items(items))
    parts = location.list("data")
    assert len(parts) == 3 and all(p.startswith(f"data/{TFIDF}/") and p.endswith(".json.gz") for p in parts)
    first = gzip.decompress(location.get(parts[0])).decode().splitlines()[0]
    assert first.startswith('{"Item":{"user_handle":{"N":"1"},')  # ImportTable's DYNAMODB_JSON lines
    assert manifest["models"] == {TFIDF: {"items": len(items), "lists_checksum": ""}} and manifest["items"] == len(items)
    assert manifest["key_schema"] == [{"AttributeName": "user_handle", "KeyType": "HASH"},
                                      {"AttributeName": "model_handle", "KeyType": "RANGE"}]
    assert manifest["format"] == "DYNAMODB_JSON" and manifest["compression"] == "GZIP" and manifest["commit"]


def test_a_partition_target_pickles_and_a_retried_block_replaces_its_parts(tmp_path):
    target = pickle.loads(pickle.dumps(ExportTarget(ExportLocation(str(tmp_path / "e")), part_items=100)))
    items = block(250)
    parts = list(items.split(120))
    for part in parts + parts[:1]:  # the first partition runs twice (a Dask retry)
        target.write(part)
    assert canonical(exported(target.location)) == canonical(dynamo_items(items))


def test_parts_read_back_with_gzip_and_json_are_the_items_and_separate_writers_give_one_writers_set(tmp_path):
    items = block(900)
    one = ExportTarget(ExportLocation(str(tmp_path / "one")), part_items=1000)
    assert one.write(items) == len(items)
    many = ExportTarget(ExportLocation(str(tmp_path / "many")), part_items=100)
    for part in reversed(list(items.split(250))):  # writers in any order, each its own parts
        many.write(pickle.loads(pickle.dumps(part)))

    def parsed(root):
        return [json.loads(line)["Item"] for path in sorted((root / "data").rglob("*.json.gz"))
                for line in gzip.decompress(path.read_bytes()).decode().splitlines()]

    assert len(list((tmp_path / "many" / "data").rglob("*.json.gz"))) == 3 + 3 + 3 + 2  # writers of 250, 250, 250, 150 users
    expected = [json.loads(json_line(item)) for item in items]
    for root in ("one", "many"):
        back = [json.loads(json_line(from_dynamo(attributes))) for attributes in parsed(tmp_path / root)]
        assert sorted(back, key=lambda r: r["user_handle"]) == expected


def test_a_folder_that_holds_files_is_refused(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ExportFailed, match="already holds files"):
        ExportSink(ExportLocation(str(tmp_path))).begin("r", (TFIDF,))


# -- publishing by ImportTable, moto in-process ---------------------------------------------------

@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setattr(moto_import_fix.TableImport, "_process_s3_files", moto_import_fix._process_s3_files)
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        settings = local_settings_class()(dynamodb_table="imp", dynamodb_endpoint_url=None, pointer_cache_seconds=0)
        store = DynamoStore.for_generator(settings)
        previous = [StoredItem.of(u, m, [(u + 1, 0.5)], run_id="20250101T000000Z-previous") for m in MODELS for u in (1, 2, 3)]
        publish(store, "20250101T000000Z-previous", previous)  # the run that serves before
        yield settings, store


def importer(store, uri: str = f"s3://{BUCKET}/nightly") -> RunPublisher:
    return import_publisher(store, ExportLocation(uri), poll_seconds=0.01, timeout_seconds=60)


def assert_nothing_published(store, run_id: str | None) -> None:
    """The previous run serves every model; the failed run left no table, no record, no export, no lock."""
    assert {p.run_id for p in store.pointers()} == {"20250101T000000Z-previous"}
    assert DynamoStore.for_api(store.settings).get(2, KNN).similar_users == [3]
    tables = store.client.list_tables()["TableNames"]
    assert store.run_table(run_id or "none") not in tables
    assert boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert "Item" not in store.client.get_item(TableName=store.control_table, Key={"pk": {"S": "lock"}, "sk": {"S": "generator"}})
    if run_id:  # its record went with its table
        record = store.client.get_item(TableName=store.control_table, Key={"pk": {"S": "run"}, "sk": {"S": run_id}})
        assert "Item" not in record


def test_an_import_run_publishes_exactly_the_exported_items(aws, small_dataset):
    settings, store = aws
    sink = importer(store)
    report = pipeline.run(small_dataset, sink, MODELS, 5, progress=False)
    run_id = report.run_id
    assert {p.model_handle: (p.run_id, p.table) for p in store.pointers()} == {
        m: (run_id, store.run_table(run_id)) for m in MODELS}
    location = ExportLocation(f"s3://{BUCKET}/nightly/{run_id}")
    manifest = json.loads(location.get("manifest.json"))
    assert manifest["models"] == {m.handle: {"items": m.items_written, "lists_checksum": m.lists_checksum} for m in report.models}
    items = exported(location)
    assert len(items) == manifest["items"] == sum(m.items_written for m in report.models)
    scanned = store.client.get_paginator("scan").paginate(TableName=store.run_table(run_id)).build_full_result()["Items"]
    assert canonical(scanned) == canonical(items)  # the imported table holds the export, item for item
    reader = DynamoStore.for_api(settings)
    some = from_dynamo(next(i for i in items if i["model_handle"]["S"] == TFIDF and "reasons" in i))
    assert explained(reader.get(some.user_handle, TFIDF)) == some
    desc = store.client.describe_table(TableName=store.run_table(run_id))["Table"]
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_a_missing_bucket_publishes_nothing(aws, small_dataset):
    _, store = aws
    sink = importer(store, "s3://no-such-bucket/nightly")
    with pytest.raises(ExportFailed, match="bucket no-such-bucket does not exist"):
        pipeline.run(small_dataset, sink, MODELS, 5, progress=False)
    assert_nothing_published(store, sink.run_id)


COUNTS = {model: 300 for model in MODELS}


def begin_and_write(store) -> RunPublisher:
    sink = importer(store)
    sink.begin("20260101T000000Z-importme", MODELS)
    for model in MODELS:
        sink.write(model, block(300, model, sink.run_id))
    return sink


def fail_at_commit(sink: RunPublisher, match: str) -> None:
    try:
        with pytest.raises(ImportFailed, match=match):
            sink.commit(COUNTS)
    finally:
        sink.abort()


def test_a_corrupt_part_fails_the_import_and_publishes_nothing(aws):
    _, store = aws
    sink = begin_and_write(store)
    part = sink.fill.export.location.list("data")[0]
    sink.fill.export.location.put(part, b"\x1f\x8b this is not gzip")
    fail_at_commit(sink, "FAILED")
    assert_nothing_published(store, sink.run_id)


def test_an_item_count_other_than_the_manifests_publishes_nothing(aws):
    _, store = aws
    sink = begin_and_write(store)
    stray = StoredItem.of(999, TFIDF, [(1, 0.5)], run_id=sink.run_id)  # an object under the prefix not in the counts
    ExportTarget(sink.fill.export.location).write([stray], name="stray")
    fail_at_commit(sink, "imported 601 items, the export's manifest.json counts 600")
    assert_nothing_published(store, sink.run_id)


@pytest.fixture
def held_import(monkeypatch):
    """Imports stay IN_PROGRESS until ``release`` is set (an injection point in moto's import thread)."""
    release = threading.Event()

    def held(self, s3_backend, bucket):
        assert release.wait(60), "the test never released the import"
        moto_import_fix._process_s3_files(self, s3_backend, bucket)

    monkeypatch.setattr(moto_import_fix.TableImport, "_process_s3_files", held)
    yield release
    release.set()


def finish_import(arn: str) -> None:
    from moto.dynamodb.models import dynamodb_backends

    dynamodb_backends["123456789012"]["us-east-1"].table_imports[arn].join(30)


def test_sigterm_while_waiting_publishes_nothing_and_the_next_run_drops_the_leftover(aws, held_import):
    from recommender.cli.common import Terminated

    _, store = aws

    def terminated(seconds: float) -> None:
        raise Terminated()  # what the SIGTERM handler raises in the main thread, here while polling

    sink = begin_and_write(store)
    sink.fill.sleep = terminated
    try:
        with pytest.raises(Terminated):
            sink.commit(COUNTS)
    finally:
        sink.abort()
    held_import.set()  # an import cannot be cancelled: it ends, and its table appears afterwards
    finish_import(sink.fill.import_arn)
    assert {p.run_id for p in store.pointers()} == {"20250101T000000Z-previous"}
    assert boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert store.run_table(sink.run_id) in store.client.list_tables()["TableNames"]
    publish(store, "20260202T000000Z-nextrun0", [StoredItem.of(1, TFIDF, [(2, 0.5)])])
    assert store.run_table(sink.run_id) not in store.client.list_tables()["TableNames"]  # the next run's clean-up


def test_an_import_past_its_timeout_publishes_nothing(aws, held_import):
    _, store = aws
    sink = begin_and_write(store)
    sink.fill.timeout_seconds = 0
    fail_at_commit(sink, "still in progress after 0s")
    held_import.set()
    finish_import(sink.fill.import_arn)
    assert {p.run_id for p in store.pointers()} == {"20250101T000000Z-previous"}
    assert boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


# -- the command lines against a moto server -----------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_server(tmp_path):
    port = free_port()
    log = (tmp_path / "moto.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "tests.moto_import_fix", "-H", "127.0.0.1", "-p", str(port)],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "moto.log").read_text()
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_generator_imports_into_a_moto_server_and_the_api_serves_it(moto_server, small_dataset, tmp_path, monkeypatch):
    # Only the endpoint variables: what boto3 reads for AWS.
    env = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": moto_server, "AWS_ENDPOINT_URL_S3": moto_server,
           "DYNAMODB_TABLE": "served", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    env.pop("DYNAMODB_ENDPOINT_URL", None)
    env.pop("S3_ENDPOINT_URL", None)
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=BUCKET)

    def generate(uri: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "recommender.cli.generate", "--no-progress", "--data-dir",
                               str(small_dataset), "--models", ",".join(MODELS), "--sink", "import", "--export-uri", uri,
                               "--report", str(tmp_path / "run.json")],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    done = generate(f"s3://{BUCKET}/nightly")
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = json.loads((tmp_path / "run.json").read_text())["run_id"]

    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.setenv(name, moto_server)
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    from recommender.api import create_app
    from recommender.config import ApiSettings

    app = create_app(ApiSettings(dynamodb_table="served", dynamodb_endpoint_url=None, pointer_cache_seconds=0,
                                 item_cache_size=0))
    client = app.test_client()

    def ask() -> dict:
        response = client.post("/similar-users/", json={"user_handle": 5, "model_handle": TFIDF, "explain": True})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()[0]

    answer = ask()
    location = ExportLocation(f"s3://{BUCKET}/nightly/{run_id}", moto_server)
    item = next(from_dynamo(i) for i in exported(location)
                if i["user_handle"]["N"] == "5" and i["model_handle"]["S"] == TFIDF)
    assert answer["similar_users"] == item.similar_users and len(item.similar_users) > 0  # the imported run serves

    failed = generate("s3://no-such-bucket/nightly")
    assert failed.returncode == 1
    assert [line for line in failed.stderr.splitlines() if line.startswith("error:")] == [failed.stderr.strip()]
    assert "no-such-bucket" in failed.stderr
    assert ask() == answer  # the previous run keeps serving


@pytest.mark.parametrize(("args", "message"), [
    (["--sink", "export"], "--sink export needs --export-uri"),
    (["--sink", "import", "--export-uri", "some/folder"], "ImportTable reads from S3"),
    (["--sink", "export", "--export-uri", "s3://b/p", "--dry-run", "x.jsonl"], "cannot be combined with --sink export"),
    (["--export-uri", "s3://b/p"], "needs --sink export or --sink import"),
])
def test_sink_usage_mistakes_exit_2_with_one_line(small_dataset, args, message):
    done = subprocess.run([sys.executable, "-m", "recommender.cli.generate", "--data-dir", str(small_dataset), *args],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and message in done.stderr


def test_the_former_option_name_is_an_alias_with_a_deprecation_line(small_dataset):
    done = subprocess.run([sys.executable, "-m", "recommender.cli.generate", "--data-dir", str(small_dataset),
                           "--publish", "import", "--export-uri", "some/folder"],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    warning, error = done.stderr.splitlines()
    assert warning == "warning: --publish is deprecated; use --sink import"
    assert error.startswith("error: ") and "ImportTable reads from S3" in error
