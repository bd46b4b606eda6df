"""The generator's command line: lock refusal, run summary file, exit codes, signals, coverage guard."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from recommender.store.dynamo import DynamoStore
from recommender.store.items import StoredItem
from recommender.store.publisher import RunPublisher
from tests.conftest import ROOT, publish

pytestmark = pytest.mark.dynamodb


def generator_env(settings, tmp_path) -> dict[str, str]:
    return {**os.environ, "DYNAMODB_ENDPOINT_URL": settings.dynamodb_endpoint_url, "DYNAMODB_TABLE": settings.dynamodb_table,
            "RUN_REPORT_DIR": str(tmp_path / "reports"), "LOG_LEVEL": "INFO"}


def default_sigint() -> None:
    """In the child: SIGINT back to its default.  A suite started in the background (``make test &``,
    nohup) hands SIGINT down ignored, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def generate(settings, data_dir, tmp_path, *extra: str, models: str = "tfidf_user_interest") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "run_generator.py", "--no-progress", "--data-dir", str(data_dir), "--models", models, *extra],
        cwd=ROOT, env=generator_env(settings, tmp_path), capture_output=True, text=True, timeout=300,
    )


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_second_generator_refuses_with_exit_3_while_one_runs(local_settings, small_dataset, tmp_path):
    holder = RunPublisher(DynamoStore.for_generator(local_settings), lease_seconds=60)
    holder.begin("20260101T000000Z-holder00", ("tfidf_user_interest",))
    try:
        result = generate(local_settings, small_dataset, tmp_path)
    finally:
        holder.abort()
        holder.abort()
    assert result.returncode == 3
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: another generator run (20260101T000000Z-holder00 on ") and "holds the lock" in last
    assert generate(local_settings, small_dataset, tmp_path).returncode == 0  # free again


def test_each_run_leaves_a_machine_readable_summary(local_settings, small_dataset, tmp_path):
    result = generate(local_settings, small_dataset, tmp_path)
    assert result.returncode == 0, result.stderr
    (report_file,) = (tmp_path / "reports").glob("*.json")
    report = json.loads(report_file.read_text())
    assert report_file.stem == report["run_id"]
    assert report["rows_read"]["user_interests"] > report["rows_read"]["user_interests"] - sum(report["dropped"]["user_interests"].values()) > 0
    (model,) = report["models"]
    assert model["handle"] == "tfidf_user_interest" and model["items_written"] == model["users_covered"] == 600
    assert {"load_seconds", "publish_seconds", "total_seconds"} <= report.keys()
    assert f"run {report['run_id']} done" in result.stderr
    # The same summary is kept with the run in the control table.
    runs = DynamoStore.for_generator(local_settings).query_control("run")
    assert json.loads(runs[0]["summary"])["run_id"] == report["run_id"]


KNN = "knn_collab_filtering_user_course_view"


def copy_with_views(src: Path, dst: Path, edit) -> Path:
    """A copy of the dataset whose views table went through ``edit`` (a pandas frame → frame)."""
    dst.mkdir()
    for name in ("user_interests.csv", "user_assessment_scores.csv", "course_tags.csv"):
        shutil.copy(src / name, dst / name)
    edit(pd.read_csv(src / "user_course_views.csv")).to_csv(dst / "user_course_views.csv", index=False)
    return dst


def published_items(settings, model: str) -> int | None:
    pointer = DynamoStore.for_generator(settings).pointer(model, fresh=True)
    return pointer.items if pointer else None


def test_an_export_whose_rows_are_all_dropped_never_replaces_a_good_run(local_settings, small_dataset, tmp_path):
    assert generate(local_settings, small_dataset, tmp_path, models=KNN).returncode == 0
    good = published_items(local_settings, KNN)
    zeros = copy_with_views(small_dataset, tmp_path / "zeros", lambda f: f.assign(view_time_seconds=0))
    result = generate(local_settings, zeros, tmp_path, models=KNN)
    assert result.returncode == 2
    assert last_line(result).startswith(f"error: model {KNN} covers no user: user_course_views has no usable rows (")
    assert "non-positive view_time_seconds" in last_line(result)
    assert published_items(local_settings, KNN) == good  # the previous run keeps serving


def test_a_model_that_lost_most_of_its_users_is_refused_unless_forced(local_settings, small_dataset, tmp_path):
    assert generate(local_settings, small_dataset, tmp_path, models=KNN).returncode == 0
    good = published_items(local_settings, KNN)
    few = copy_with_views(small_dataset, tmp_path / "few", lambda f: f[f["user_handle"] % 10 == 0])
    result = generate(local_settings, few, tmp_path, models=KNN)
    assert result.returncode == 2, result.stderr
    line = last_line(result)
    assert line.startswith(f"error: model {KNN} covers ") and f"(before: {good:,}, after: " in line and "--force" in line
    assert published_items(local_settings, KNN) == good
    forced = generate(local_settings, few, tmp_path, "--force", models=KNN)
    assert forced.returncode == 0, forced.stderr
    assert published_items(local_settings, KNN) < good * 0.5


# --- Stopping a run: the pointer flip is the commit point (docs/operations/publishing.md) -------------------
#
# GENERATOR_TEST_STOP_AT makes the real generator signal itself (or fail) at an exact phase
# boundary (recommender/stopping.py): no timing.  A baseline run is published first; the stopped
# run must leave either that run (before the flip) or itself (after it) whole and serving.

BEFORE_FLIP = ("load", "fit", "search", "write", "commit")
AFTER_FLIP = ("published", "cleanup")
BASELINE = "20260101T000000Z-baseline"
USER = 42


def stop_case(stop: str) -> tuple[int, str | None]:
    """The exit code and last line the generator promises for ``GENERATOR_TEST_STOP_AT=stop``."""
    phase, _, action = stop.partition(":")
    action = action or "SIGTERM"
    verb = "interrupted" if action == "SIGINT" else "terminated"
    if action == "error":
        if phase in AFTER_FLIP:  # a clean-up failure is logged, never undoes the run
            return 0, None
        return 1, f"error: generator failed: InjectedFailure: injected failure at {phase} (GENERATOR_TEST_STOP_AT)"
    if phase in AFTER_FLIP:
        return 4, f"error: {verb} ({action}) after the run was published; the new run serves, nothing was undone"
    return (130 if action == "SIGINT" else 143), f"error: {verb} ({action}); the run was not published"


def table_names(store) -> set[str]:
    """Every table in DynamoDB Local (all pages: other tests' tables are there too)."""
    return set(store.client.get_paginator("list_tables").paginate().build_full_result()["TableNames"])


def lock_item(store) -> dict | None:
    return store.client.get_item(TableName=store.control_table, Key={"pk": {"S": "lock"}, "sk": {"S": "generator"}}).get("Item")


def served(settings, user: int) -> dict:
    """What the API answers for ``user`` now (no pointer cache): it must be 200."""
    from recommender.api import create_app

    client = create_app(settings.model_copy(update={"pointer_cache_seconds": 0})).test_client()
    response = client.post("/similar-users/", json={"user_handle": user, "model_handle": "tfidf_user_interest"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()[0]


@pytest.mark.parametrize("stop", [
    *BEFORE_FLIP, *AFTER_FLIP,  # SIGTERM at every phase
    "write:SIGINT", "published:SIGINT", "commit:error", "write:error", "published:error", "cleanup:error",
])
def test_a_stop_at_each_phase_publishes_all_or_nothing(local_settings, small_dataset, tmp_path, stop):
    store = DynamoStore.for_generator(local_settings)
    publish(store, BASELINE, [StoredItem.of(USER, "tfidf_user_interest", [(7, 0.9), (8, 0.5)], run_id=BASELINE)])
    baseline_table = store.run_table(BASELINE)
    env = {**generator_env(local_settings, tmp_path), "GENERATOR_TEST_STOP_AT": stop, "KEEP_RUNS": "1"}
    result = subprocess.run(
        [sys.executable, "run_generator.py", "--no-progress", "--data-dir", str(small_dataset), "--models", "tfidf_user_interest"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, preexec_fn=default_sigint,
    )
    code, line = stop_case(stop)
    assert result.returncode == code, result.stderr[-3000:]
    if line is not None:
        assert last_line(result) == line
    phase = stop.partition(":")[0]
    runs = {r["sk"]: r for r in store.query_control("run")}
    tables = table_names(store)
    (pointer,) = store.pointers()
    assert lock_item(store) is None  # released in every case: the next run need not wait
    if phase in BEFORE_FLIP:  # nothing published: the baseline serves, the stopped run left no record, no table
        assert pointer.run_id == BASELINE and baseline_table in tables
        assert served(local_settings, USER)["similar_users"] == [7, 8]
        assert list(runs) == [BASELINE]
        assert {t for t in tables if t.startswith(local_settings.dynamodb_table + "-")} == {baseline_table, store.control_table}
        assert not list((tmp_path / "reports").glob("*.json"))
    else:  # published: the new run serves whole, its summary is written
        new = pointer.run_id
        assert new != BASELINE and runs[new]["status"] == "complete" and store.run_table(new) in tables
        assert pointer.items == 600 and served(local_settings, USER)["similar_users"] != [7, 8]
        (report_file,) = (tmp_path / "reports").glob("*.json")
        report = json.loads(report_file.read_text())
        assert report["run_id"] == new
        if stop.endswith(":error"):  # the clean-up failed: logged and reported; the next run removes the baseline
            assert report["cleanup_error"].startswith("removing old runs: InjectedFailure: ")
            assert baseline_table in tables and BASELINE in runs
            assert f"WARNING recommender.publishing: run {new} is published; removing old runs: " in result.stderr
        else:  # a signal after the flip lets the clean-up finish (KEEP_RUNS=1: the baseline goes)
            assert report["cleanup_error"] is None and report["removed_runs"] == [BASELINE]
            assert baseline_table not in tables and BASELINE not in runs


def test_sigterm_right_after_the_published_line_never_drops_the_run(local_settings, small_dataset, tmp_path):
    """An outside SIGTERM as soon as the generator logs "published run": wherever it lands (signals
    held, or after the run returned, or after the handler was restored: exit 4, 4 or -15; or after
    the process ended: 0), the new run serves."""
    store = DynamoStore.for_generator(local_settings)
    assert generate(local_settings, small_dataset, tmp_path).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "run_generator.py", "--no-progress", "--data-dir", str(small_dataset), "--models", "tfidf_user_interest"],
        cwd=ROOT, env={**generator_env(local_settings, tmp_path), "PYTHONUNBUFFERED": "1"}, stderr=subprocess.PIPE, text=True,
    )
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "published run " in line:
                proc.send_signal(signal.SIGTERM)
                break
        seen.extend(proc.stderr)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode in (0, 4, -signal.SIGTERM), "".join(seen[-20:])
    published = next(l for l in seen if "published run " in l).split("published run ")[1].split(":")[0]
    (pointer,) = store.pointers()
    assert pointer.run_id == published and store.run_table(published) in table_names(store)
    assert served(local_settings, USER)["generated_at"] is not None


# --- Usage errors before any work, bad values never published (issue 7 C, issue 11.4) -----------

def dry_run(data_dir, tmp_path, *extra: str, env: dict[str, str] | None = None,
            models: str = "tfidf_user_interest") -> subprocess.CompletedProcess:
    """The generator with --dry-run (no database): what an operator trying a broken export sees."""
    args = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return subprocess.run(
        [sys.executable, "run_generator.py", "--no-progress", "--models", models, *args, *extra],
        cwd=ROOT, env={**os.environ, "RUN_REPORT_DIR": str(tmp_path / "reports"), "LOG_LEVEL": "INFO", **(env or {})},
        capture_output=True, text=True, timeout=300,
    )


def nothing_done(result: subprocess.CompletedProcess) -> bool:
    """No table was loaded and no model ran (the loader logs "read N rows" per table)."""
    return "rows, kept" not in result.stderr and "users covered" not in result.stderr


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_dry_run_into_a_directory_is_refused_before_any_work(small_dataset, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = dry_run(small_dataset, tmp_path, "--dry-run", str(out))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: --dry-run {out}: is a directory (give a file name)"]
    assert nothing_done(result)


def test_report_into_a_directory_is_refused_before_any_work(small_dataset, tmp_path):
    result = dry_run(small_dataset, tmp_path, "--dry-run", str(tmp_path / "items.jsonl"), "--report", str(tmp_path))
    assert result.returncode == 2
    assert last_line(result) == f"error: --report {tmp_path}: is a directory (give a file name)" and nothing_done(result)


def test_data_dir_s3_without_bucket_is_a_usage_error(tmp_path):
    result = dry_run(None, tmp_path, "--dry-run", str(tmp_path / "items.jsonl"), env={"DATA_DIR": "s3://"})
    assert result.returncode == 2
    assert last_line(result) == "error: DATA_DIR / --data-dir 's3://': no bucket in the S3 URL (expected s3://bucket/prefix)"
    assert nothing_done(result)


def test_directory_named_like_a_table_is_a_usage_error(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    (data / "user_interests.csv").unlink()
    (data / "user_interests.csv").mkdir()
    result = dry_run(data, tmp_path, "--dry-run", str(tmp_path / "items.jsonl"))
    assert result.returncode == 2
    assert last_line(result) == f"error: {data / 'user_interests.csv'}: is a directory" and nothing_done(result)


@pytest.mark.parametrize(("row", "message"), [
    ("1180591620717411303424,python,2017-01-02",
     "column 'user_handle', row {line}: value '1180591620717411303424' is above the largest user handle, 9223372036854775807"),
    ("12.5,python,2017-01-02", "column 'user_handle', row {line}: value '12.5' is not a positive integer"),
    ("7,python,2999-01-01", "column 'date_followed', row {line}: value '2999-01-01' is not between 1970-01-01 and one day after the run ("),
    (f"7,{'x' * 10_000},2017-01-02", "column 'interest_tag', row {line}: value 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... "
                                     "(10,000 characters) is longer than 200 characters"),
])
def test_bad_value_stops_the_run_with_one_line_and_publishes_nothing(small_dataset, tmp_path, row, message):
    data = copy_dataset(small_dataset, tmp_path / "data")
    interests = data / "user_interests.csv"
    line = len(interests.read_text().splitlines()) + 1
    with interests.open("a") as handle:
        handle.write(row + "\n")
    out = tmp_path / "items.jsonl"
    result = dry_run(data, tmp_path, "--dry-run", str(out))
    assert result.returncode == 2, result.stderr[-2000:]
    assert last_line(result).startswith(f"error: {interests}: " + message.format(line=line))
    assert not out.exists()


def test_a_date_with_an_offset_among_plain_dates_is_read_as_utc(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    with (data / "user_interests.csv").open("a") as handle:
        handle.write("7,python,2017-07-31T10:00:00Z\n7,sql,2017-07-31T12:00:00+02:00\n")
    out = tmp_path / "items.jsonl"
    result = dry_run(data, tmp_path, "--dry-run", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(out.read_text().splitlines()) == 600


def test_header_only_table_is_one_clear_line(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    (data / "user_interests.csv").write_text("user_handle,interest_tag,date_followed\n")
    result = dry_run(data, tmp_path, "--dry-run", str(tmp_path / "items.jsonl"))
    assert result.returncode == 2
    assert last_line(result) == f"error: {data / 'user_interests.csv'}: no data rows"


def test_inf_view_time_stops_the_run_with_exit_2(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    views = data / "user_course_views.csv"
    text = views.read_text().splitlines()
    text[5] = ",".join(text[5].split(",")[:-1] + ["inf"])
    views.write_text("\n".join(text) + "\n")
    result = dry_run(data, tmp_path, "--dry-run", str(tmp_path / "items.jsonl"), models=KNN)
    assert result.returncode == 2, result.stderr[-2000:]
    assert last_line(result) == f"error: {views}: column 'view_time_seconds', row 6: value 'inf' is not a finite number"
