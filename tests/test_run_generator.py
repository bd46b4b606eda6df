"""The generator's command line: lock refusal, run summary file, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from recommender.store.dynamo import DynamoStore
from recommender.store.publisher import RunPublisher
from tests.conftest import ROOT

pytestmark = pytest.mark.dynamodb


def generate(settings, data_dir, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": settings.dynamodb_endpoint_url, "DYNAMODB_TABLE": settings.table_name,
           "RUN_REPORT_DIR": str(tmp_path / "reports"), "LOG_LEVEL": "INFO"}
    return subprocess.run(
        [sys.executable, "run_generator.py", "--no-progress", "--data-dir", str(data_dir), "--models", "tfidf_user_interest", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


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
