"""The API as deployed: gunicorn with two workers on a loopback port, DynamoDB Local behind it,
exercised from outside by the Postman collection (newman), by schemathesis against the served
``/openapi.json``, and scraped for metrics that must add up over the workers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import MODELS
from tests.live import gunicorn_server
from tests.conftest import ROOT

pytestmark = [pytest.mark.dynamodb]

COLLECTION = ROOT / "docs" / "postman" / "similar-users.postman_collection.json"
ST = Path(sys.executable).parent / "st"
# schemathesis: examples per operation (two operations take parameters; ~1,200 requests in all)
# and a fixed seed so that CI is reproducible (SCHEMATHESIS_SEED=random explores new inputs).
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "500"))
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261128")
MIN_REQUESTS = 1000


def requests_counted(base: str, headers: dict | None = None) -> dict[tuple, float]:
    """``similar_users_http_requests_total`` by label set, as one scrape of /metrics reports it."""
    text = requests.get(f"{base}/metrics", headers=headers or {}, timeout=5).text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "similar_users_http_requests_total"
    }


def newman(base: str, report: Path, api_key: str | None) -> subprocess.CompletedProcess:
    if not shutil.which("npx"):
        pytest.fail("npx (Node 20) is required for the Postman collection test")
    if not (ROOT / "node_modules" / "newman" / "package.json").is_file():
        pytest.fail("newman is not installed: run `npm install` (make install does)")
    command = ["npx", "--no-install", "newman", "run", str(COLLECTION), "--env-var", f"baseUrl={base}",
               "--reporters", "cli,json", "--reporter-json-export", str(report), "--color", "off"]
    if api_key is not None:
        command += ["--env-var", f"apiKey={api_key}"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_postman_collection_passes_with_newman(seeded_settings, tmp_path):
    key = "postman-key-0f1e2d3c"
    log = tmp_path / "gunicorn.log"
    with gunicorn_server(seeded_settings, log, env={"API_KEYS": key}) as base:
        passed = newman(base, tmp_path / "newman.json", api_key=key)
        # Control: the same collection without the key must fail (the tests do look at statuses).
        refused = newman(base, tmp_path / "newman-nokey.json", api_key=None)
    assert passed.returncode == 0, passed.stdout[-5000:] + passed.stderr[-2000:]
    stats = json.loads((tmp_path / "newman.json").read_text())["run"]["stats"]
    print(f"\nnewman: {stats['requests']['total']} requests, {stats['assertions']['total']} assertions, "
          f"{stats['assertions']['failed']} failed")
    assert stats["requests"]["total"] == 11 and stats["requests"]["failed"] == 0
    assert stats["assertions"]["failed"] == 0 and stats["assertions"]["total"] >= 30
    assert refused.returncode != 0
    refused_stats = json.loads((tmp_path / "newman-nokey.json").read_text())["run"]["stats"]
    assert refused_stats["assertions"]["failed"] > 0
    server_log = log.read_text()
    assert "POST /similar-users/ 200" in server_log and "POST /similar-users/ 401" in server_log
    assert key not in server_log


def test_schemathesis_finds_no_server_error_or_schema_violation(seeded_settings, tmp_path):
    key = "schemathesis-key-9a8b7c"
    headers = {"X-API-Key": key}
    har = tmp_path / "schemathesis.har.json"
    # A running experiment: answers without model_handle carry its fields, and /feedback is explored too.
    experiments = tmp_path / "experiments.toml"
    experiments.write_text((ROOT / "docs" / "experiments.example.toml").read_text().replace(
        'status = "paused"', 'status = "running"').replace("2026-11-28T00:00:00Z", "2020-01-01T00:00:00Z").replace(
        "2026-12-12T00:00:00Z", "2100-01-01T00:00:00Z"))
    env = {"API_KEYS": key, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"), "EXPERIMENTS_FILE": str(experiments)}
    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log", env=env) as base:
        ab = requests.post(f"{base}/similar-users/", json={"user_handle": 999}, headers=headers, timeout=5).json()[0]
        assert ab["experiment"] == "interest-vs-views" and ab["variant"] in ("interest", "views")
        before = sum(requests_counted(base, headers).values())
        result = subprocess.run(
            [str(ST), "--config-file", str(ROOT / "tests" / "api" / "schemathesis.toml"), "run", f"{base}/openapi.json", "--header", f"X-API-Key: {key}",
             "--checks", "all", "--max-examples", str(MAX_EXAMPLES), *(["--seed", SEED] if SEED != "random" else []),
             "--generation-database", "none", "--request-timeout", "5",
             "--report", "har", "--report-har-path", str(har), "--no-color"],
            # cwd: schemathesis keeps a cache folder in its working directory
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": str(ROOT)},
        )
        after = sum(requests_counted(base, headers).values())
    summary = result.stdout[result.stdout.find("SUMMARY"):] if "SUMMARY" in result.stdout else result.stdout[-3000:]
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = [entry["response"]["status"] for entry in entries]
    print(f"\nschemathesis: {len(entries)} requests, statuses {sorted(set(statuses))}; "
          f"server counted {after - before - 1:.0f}\n{summary}")
    assert len(entries) >= MIN_REQUESTS
    assert not [s for s in statuses if s >= 500]
    assert {200, 400, 401, 404} <= set(statuses)  # it reached answers, errors and the key check
    feedback = [entry["response"]["status"] for entry in entries if entry["request"]["url"].endswith("/feedback")]
    assert len(feedback) >= 100 and not [s for s in feedback if s >= 500] and {400, 404} <= set(feedback)
    # The server's own count, summed over both workers, saw at least every recorded request.
    assert after - before - 1 >= len(entries)  # (the experiment probe came before)


def test_metrics_add_up_over_gunicorn_workers(seeded_settings, tmp_path):
    prometheus_dir = tmp_path / "prometheus"
    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log", workers=2,
                         env={"PROMETHEUS_MULTIPROC_DIR": str(prometheus_dir)}) as base:

        def ask(i: int) -> int:
            body = {"user_handle": 999, "model_handle": MODELS[i % len(MODELS)]}
            return requests.post(f"{base}/similar-users/", json=body, timeout=10).status_code

        # gevent workers: one worker may take a whole batch, so send batches until both have answered.
        batches = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            while batches < 10:
                assert set(pool.map(ask, range(60))) == {200}
                batches += 1
                workers_that_counted = {path.stem.rsplit("_", 1)[1] for path in prometheus_dir.glob("counter_*.db")}
                if len(workers_that_counted) == 2:
                    break
        assert len(workers_that_counted) == 2  # both workers answered some requests
        for _ in range(4):  # whichever worker answers the scrape reports the whole server
            counted = requests_counted(base)
            for model in MODELS:
                labels = (("endpoint", "/similar-users/"), ("method", "POST"), ("model_handle", model), ("status", "200"))
                assert counted[labels] == 60 // len(MODELS) * batches  # each model equally often
