"""The generator's command line: lock refusal, run summary file, exit codes, signals, coverage guard."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from recommender.store.dynamo import DynamoStore
from recommender.store.publisher import RunPublisher
from tests.conftest import ROOT

pytestmark = pytest.mark.dynamodb


def generator_env(settings, tmp_path) -> dict[str, str]:
    return {**os.environ, "DYNAMODB_ENDPOINT_URL": settings.dynamodb_endpoint_url, "DYNAMODB_TABLE": settings.dynamodb_table,
            "RUN_REPORT_DIR": str(tmp_path / "reports"), "LOG_LEVEL": "INFO"}


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
        holder.release_lock()
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
    assert all(report[k] >= 0 for k in ("load_seconds", "publish_seconds", "total_seconds"))
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


def test_sigterm_ends_like_sigint_run_failed_table_dropped_lock_released(local_settings, small_dataset, tmp_path):
    store = DynamoStore.for_generator(local_settings)
    proc = subprocess.Popen(
        [sys.executable, "run_generator.py", "--no-progress", "--data-dir", str(small_dataset)],  # all models: the DNN takes seconds
        cwd=ROOT, env=generator_env(local_settings, tmp_path), stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if [r for r in store.query_control("run") if r["status"] == "writing"]:
                    break
            except Exception:  # noqa: BLE001 - the control table is created by the run itself
                pass
            time.sleep(0.1)
        assert proc.poll() is None, "the generator finished before it could be terminated"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "error: terminated (SIGTERM); the run was not published"
    (run,) = store.query_control("run")
    assert run["status"] == "failed"
    assert store.run_table(run["sk"]) not in store.client.list_tables()["TableNames"]
    assert not store.client.get_item(TableName=store.control_table, Key={"pk": {"S": "lock"}, "sk": {"S": "generator"}}).get("Item")
    assert generate(local_settings, small_dataset, tmp_path).returncode == 0  # no lease to wait for
