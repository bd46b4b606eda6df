"""``similar-users-load``: an export into DynamoDB Local through the one publish lifecycle.

A loaded export is a source of items and nothing more: it gets the generator's guarantees (a new
run id and table, verified counts and checksums, coverage, the lock, signals, exit codes), and a
bad or hostile export is refused with one ``error:`` line before anything that serves is touched.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from recommender.search.checksum import checksum
from recommender.store.dynamo import DynamoStore
from recommender.store.export_location import ExportLocation
from recommender.store.export_sink import ExportSink
from recommender.store.publisher import RunPublisher
from tests.conftest import ROOT
from tests.store.test_export import KNN, TFIDF, block, canonical, exported

pytestmark = pytest.mark.dynamodb

RUN = "20260101T000000Z-loadme00"
OTHER = "20260102T000000Z-loadme01"
USER = 42


def export(folder, blocks, run_id: str = RUN) -> ExportLocation:
    """The blocks exported as the generator exports a run: with each model's lists checksum."""
    sink = ExportSink(ExportLocation(str(folder)), part_items=150)
    sink.begin(run_id, tuple(b.model_handle for b in blocks))
    counts = {items.model_handle: sink.write(items.model_handle, items) for items in blocks}
    sink.commit(counts, json.dumps({"models": [{"handle": b.model_handle, "lists_checksum": checksum(b.neighbours)} for b in blocks]}))
    return sink.location


def run_blocks(run_id: str = RUN):
    return [block(400, TFIDF, run_id), block(350, KNN, run_id, seed=4)]


def load(location: ExportLocation | str, settings, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "DYNAMODB_ENDPOINT_URL": settings.dynamodb_endpoint_url,
                   "DYNAMODB_TABLE": settings.dynamodb_table, "LOG_LEVEL": "WARNING", **env}
    uri = location if isinstance(location, str) else location.uri
    return subprocess.run([sys.executable, "-m", "recommender.cli.load", uri], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def scan(store: DynamoStore, table: str) -> list[dict]:
    return store.client.get_paginator("scan").paginate(TableName=table).build_full_result()["Items"]


def one_error_line(done: subprocess.CompletedProcess, code: int = 2) -> str:
    assert done.returncode == code, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return lines[0]


def tables(store: DynamoStore) -> set[str]:
    names = store.client.get_paginator("list_tables").paginate().build_full_result()["TableNames"]
    return {n for n in names if n.startswith(store.prefix + "-")}


def state(store: DynamoStore) -> tuple:
    """Everything a reader or the next run sees: pointers, run records, tables, the lock."""
    runs = sorted((r["sk"], r["status"]) for r in store.query_control("run"))
    lock = store.client.get_item(TableName=store.control_table, Key={"pk": {"S": "lock"}, "sk": {"S": "generator"}})
    return sorted((p.model_handle, p.run_id, p.items) for p in store.pointers()), runs, tables(store), "Item" in lock


def served(settings, user: int = USER, model: str = TFIDF) -> dict:
    from recommender.api import create_app

    client = create_app(settings.model_copy(update={"pointer_cache_seconds": 0})).test_client()
    response = client.post("/similar-users/", json={"user_handle": user, "model_handle": model})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()[0]


@pytest.fixture
def serving(local_settings, tmp_path):
    """Run RUN loaded from its export and serving: (settings, store, the export, its items, the state)."""
    location = export(tmp_path / "export", run_blocks())
    done = load(location, local_settings)
    assert done.returncode == 0, done.stderr[-2000:]
    store = DynamoStore.for_generator(local_settings)
    return local_settings, store, location, canonical(scan(store, store.run_table(RUN))), state(store)


def copy_export(location: ExportLocation, folder, edit_manifest=None) -> ExportLocation:
    shutil.copytree(location.uri, folder)
    copy = ExportLocation(str(folder))
    if edit_manifest is not None:
        manifest = json.loads(copy.get("manifest.json"))
        edited = edit_manifest(manifest)
        copy.put("manifest.json", json.dumps(manifest if edited is None else edited).encode())
    return copy


def assert_untouched(serving) -> None:
    settings, store, _, items, before = serving
    assert state(store) == before
    assert canonical(scan(store, store.run_table(RUN))) == items
    assert served(settings)["user_handle"] == USER


# -- what a load publishes -----------------------------------------------------------------------

def test_an_export_loads_into_dynamodb_local_as_the_write_path_would_have_written_it(local_settings, tmp_path):
    blocks = run_blocks()
    store = DynamoStore.for_generator(local_settings)
    written = RunPublisher(store)  # the write path, for the same items, into a table of its own
    written.store.create_table("direct-" + local_settings.dynamodb_table, (("user_handle", "N", "HASH"), ("model_handle", "S", "RANGE")))
    for items in blocks:
        written.fill.writer.write("direct-" + local_settings.dynamodb_table, items)

    location = export(tmp_path / "export", blocks)
    done = load(location, local_settings)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.model_handle: (p.run_id, p.items) for p in store.pointers()} == {TFIDF: (RUN, 400), KNN: (RUN, 350)}
    loaded = scan(store, store.run_table(RUN))
    assert canonical(loaded) == canonical(exported(location)) == canonical(scan(store, "direct-" + local_settings.dynamodb_table))
    reader = DynamoStore.for_api(local_settings.model_copy(update={"pointer_cache_seconds": 0}))
    first = next(iter(blocks[1]))
    assert reader.get(first.user_handle, KNN).explained() == first


def test_a_folder_without_a_manifest_is_one_error_line(local_settings, tmp_path):
    line = one_error_line(load(ExportLocation(str(tmp_path)), local_settings), code=1)
    assert "manifest.json" in line


# -- a re-load never touches the serving run -----------------------------------------------------

def test_a_failed_reload_of_the_serving_run_leaves_it_serving(serving, tmp_path):
    """The outage this guards against: a re-load that failed used to write into the live table, drop it and mark it failed."""
    settings, _, location, _, _ = serving

    def one_more(manifest):
        manifest["models"][TFIDF]["items"] += 1
        manifest["items"] += 1

    line = one_error_line(load(copy_export(location, tmp_path / "edited", one_more), settings))
    assert f"run {RUN} exists already" in line
    assert_untouched(serving)


def test_reloading_the_same_export_is_refused_and_changes_nothing(serving):
    settings, _, location, _, _ = serving
    assert "exists already" in one_error_line(load(location, settings))
    assert_untouched(serving)


def test_a_truncated_part_of_a_reload_leaves_the_serving_run_serving(serving, tmp_path):
    settings, _, location, _, _ = serving
    copy = copy_export(location, tmp_path / "truncated")
    part = copy.list("data")[0]
    copy.put(part, copy.get(part)[:100])
    one_error_line(load(copy, settings))
    assert_untouched(serving)


def test_a_table_left_with_the_run_id_is_refused_and_kept(local_settings, tmp_path):
    store = DynamoStore.for_generator(local_settings)
    store.ensure_control_table()
    store.create_table(store.run_table(RUN), (("user_handle", "N", "HASH"), ("model_handle", "S", "RANGE")))
    before = state(store)
    line = one_error_line(load(export(tmp_path / "export", run_blocks()), local_settings))
    assert f"table {store.run_table(RUN)} exists already" in line
    assert state(store) == before


# -- load verifies what it publishes --------------------------------------------------------------

def forged(location: ExportLocation, folder, *, run_id: str = OTHER, checksum_of=None, edit_user: int | None = None):
    """A copy with a new run id in the manifest; optionally user ``edit_user``'s item edited in place."""
    copy = copy_export(location, folder)
    manifest = json.loads(copy.get("manifest.json"))
    manifest["run_id"] = run_id
    if checksum_of is not None:
        manifest["models"][TFIDF]["lists_checksum"] = checksum_of
    copy.put("manifest.json", json.dumps(manifest).encode())
    for part in copy.list(f"data/{TFIDF}"):
        lines = gzip.decompress(copy.get(part)).decode().splitlines()
        for i, line in enumerate(lines):
            item = json.loads(line)["Item"]
            item["run_id"]["S"] = run_id
            if edit_user is not None and item["user_handle"]["N"] == str(edit_user):
                item["similar_users"]["S"], item["scores"]["S"] = "[1,2,3]", "[9.9,9.8,9.7]"
                item.pop("reasons", None)
            lines[i] = json.dumps({"Item": item})
        copy.put(part, gzip.compress(("\n".join(lines) + "\n").encode()))
    for part in copy.list(f"data/{KNN}"):
        text = gzip.decompress(copy.get(part)).decode().replace(RUN, run_id)
        copy.put(part, gzip.compress(text.encode()))
    return copy


def test_an_edited_item_under_a_new_run_id_is_refused(serving, tmp_path):
    settings, _, location, _, _ = serving
    line = one_error_line(load(forged(location, tmp_path / "forged", edit_user=USER), settings))
    assert f"model {TFIDF}: lists_checksum" in line
    assert_untouched(serving)


def test_a_fake_checksum_is_refused(serving, tmp_path):
    settings, _, location, _, _ = serving
    line = one_error_line(load(forged(location, tmp_path / "fake", checksum_of="0" * 32), settings))
    assert f"model {TFIDF}: lists_checksum" in line
    assert_untouched(serving)


def test_items_of_another_run_than_the_manifests_are_refused(serving, tmp_path):
    settings, _, location, _, _ = serving
    line = one_error_line(load(copy_export(location, tmp_path / "renamed", lambda m: m.update(run_id=OTHER)), settings))
    assert f"an item of run '{RUN}', not of the manifest's run {OTHER}" in line
    assert_untouched(serving)


def test_a_forged_export_that_verifies_loads(serving, tmp_path):
    """The oracle for the refusals above: the same copy under a new run id, unedited, is published."""
    settings, store, location, _, _ = serving
    done = load(forged(location, tmp_path / "renamed"), settings)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.run_id for p in store.pointers()} == {OTHER}


# -- empty and bogus manifests are never published -------------------------------------------------

def test_an_empty_export_is_refused_by_the_coverage_check(serving, tmp_path):
    settings, _, _, _, _ = serving
    folder = tmp_path / "empty"
    folder.mkdir()
    manifest = {"run_id": OTHER, "format": "DYNAMODB_JSON", "compression": "GZIP", "data": "data/", "items": 0,
                "models": {TFIDF: {"items": 0, "lists_checksum": "0" * 32}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert f"model {TFIDF} covers no user" in one_error_line(load(str(folder), settings))
    assert_untouched(serving)


def test_a_much_smaller_export_is_refused_unless_the_ratio_allows_it(serving, tmp_path):
    settings, store, _, _, _ = serving
    small = export(tmp_path / "small", [block(100, TFIDF, OTHER)], run_id=OTHER)
    assert "fewer than 0.5 of the 400" in one_error_line(load(small, settings))
    assert_untouched(serving)
    assert load(small, settings, MIN_COVERAGE_RATIO="0").returncode == 0
    assert {p.model_handle: p.run_id for p in store.pointers()} == {TFIDF: OTHER, KNN: RUN}


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["models"].update({"evil_model": m["models"][TFIDF]}), "unknown model 'evil_model'"),
    (lambda m: m.update(models={"../../../../etc/passwd": m["models"][TFIDF]}), "unknown model '../../../../etc/passwd'"),
    (lambda m: m.update(run_id="../../etc/passwd"), "run id '../../etc/passwd' is not a run id"),
    (lambda m: m.update(run_id=12345), "run_id: Input should be a valid string"),
    (lambda m: m.update(items="2001"), "items: Input should be a valid integer"),
    (lambda m: m["models"][TFIDF].update(items="400"), f"models.{TFIDF}.items: Input should be a valid integer"),
    (lambda m: m.update(models=[TFIDF, KNN]), "models: Input should be a valid dictionary"),
    (lambda m: m.update(data="../elsewhere/"), "data: Input should be 'data/'"),
    (lambda m: None if m.clear() else None, "run_id: Field required"),
    (lambda m: [1, 2, 3], "(the whole file): Input should be a valid dictionary"),
    (lambda m: "null", None),
])
def test_a_bogus_manifest_is_one_error_line_and_touches_nothing(serving, tmp_path, edit, message):
    settings, _, location, _, _ = serving
    copy = copy_export(location, tmp_path / "bogus")
    manifest = json.loads(copy.get("manifest.json"))
    edited = edit(manifest)
    copy.put("manifest.json", (edited if isinstance(edited, str) else json.dumps(manifest if edited is None else edited)).encode())
    line = one_error_line(load(copy, settings))
    assert message is None or message in line, line
    assert_untouched(serving)


@pytest.mark.parametrize("content, message", [
    (b'{"Item": 5}\n', "an item is not a map of attributes"),
    (b"[1,2,3]\n", "not gzip DynamoDB JSON lines"),
    (b"not json\n", "not gzip DynamoDB JSON lines"),
    (b'{"Item": {"user_handle": {"N": "1"}}}\n', "model_handle is not a DynamoDB S value"),
])
def test_a_part_that_is_not_dynamodb_json_is_one_error_line(local_settings, tmp_path, content, message):
    location = export(tmp_path / "export", [block(10, TFIDF)])
    location.put(location.list("data")[0], gzip.compress(content))
    line = one_error_line(load(location, local_settings))
    assert message in line and "data/tfidf_user_interest/" in line
    store = DynamoStore.for_generator(local_settings)
    assert state(store) == ([], [], {store.control_table}, False)


def test_a_part_outside_the_manifests_models_or_linking_out_is_refused(local_settings, tmp_path):
    location = export(tmp_path / "export", [block(10, TFIDF)])
    (tmp_path / "export" / "data" / "stray").mkdir()
    (tmp_path / "export" / "data" / "stray" / "x.json.gz").write_bytes(b"")
    assert "not a part of a model the manifest lists" in one_error_line(load(location, local_settings))
    shutil.rmtree(tmp_path / "export" / "data" / "stray")
    outside = tmp_path / "outside.json.gz"
    outside.write_bytes(location.get(location.list("data")[0]))
    os.symlink(outside, tmp_path / "export" / "data" / TFIDF / "zz-link.json.gz")
    assert "links outside the export" in one_error_line(load(location, local_settings))


def test_clean_up_removes_a_record_whose_id_no_table_can_have(local_settings):
    """A control table polluted by an older version (a record named like a path) no longer stops retention."""
    from recommender.store.runs import RunRecords
    from recommender.store.marshal import to_attributes

    store = DynamoStore.for_generator(local_settings)
    store.ensure_control_table()
    store.client.put_item(TableName=store.control_table,
                          Item=to_attributes({"pk": "run", "sk": "../../etc/passwd", "status": "writing"}))
    assert RunRecords(store).clean_up(2, None) == ["../../etc/passwd"]
    assert store.query_control("run") == []


# -- signals and failures in each phase --------------------------------------------------------------

@pytest.mark.parametrize("stop", ["write", "commit", "published", "cleanup", "write:SIGINT", "commit:SIGINT",
                                  "published:SIGINT", "cleanup:SIGINT", "write:error"])
def test_a_stop_in_each_phase_gives_the_generators_exit_codes(serving, tmp_path, stop):
    settings, store, location, _, before = serving
    copy = forged(location, tmp_path / "next")
    done = load(copy, settings, GENERATOR_TEST_STOP_AT=stop, KEEP_RUNS="1")
    phase, _, action = stop.partition(":")
    action = action or "SIGTERM"
    verb = "interrupted" if action == "SIGINT" else "terminated"
    if action == "error":
        assert one_error_line(done, 1) == "error: load failed: InjectedFailure: injected failure at write (GENERATOR_TEST_STOP_AT)"
        assert_untouched(serving)
    elif phase in ("write", "commit"):
        line = one_error_line(done, 130 if action == "SIGINT" else 143)
        assert line == f"error: {verb} ({action}); the run was not published"
        assert_untouched(serving)  # the lock released, no table or record of the stopped run left
    else:
        line = one_error_line(done, 4)
        assert line == f"error: {verb} ({action}) after the run was published; the new run serves, nothing was undone"
        pointers, runs, names, locked = state(store)
        assert {p[1] for p in pointers} == {OTHER} and runs == [(OTHER, "complete")]
        assert names == {store.control_table, store.run_table(OTHER)} and not locked  # KEEP_RUNS=1: RUN went
        assert served(settings)["user_handle"] == USER
