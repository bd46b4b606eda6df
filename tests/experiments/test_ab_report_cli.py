"""``similar-users-ab-report NAME`` exactly as the docs write it: run from the service's working
directory, with its ``.env`` (not exported) and its default ``experiments.toml``, no options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.experiments.assignment import assign
from recommender.experiments.definitions import parse
from recommender.experiments.exposures import Event, Exposure, ExposureLog, writer_store
from tests.conftest import ROOT
from tests.experiments.files import INTEREST, VIEWS, experiment_toml

pytestmark = pytest.mark.dynamodb

REPORT = Path(sys.executable).parent / "similar-users-ab-report"
SERVICE_ENV = ("DYNAMODB_ENDPOINT_URL", "DYNAMODB_TABLE", "EXPERIMENTS_FILE", "AWS_ACCESS_KEY_ID",
               "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION")


def test_report_reads_dot_env_and_the_default_experiments_file(local_settings, tmp_path):
    text = experiment_toml("exp-r", arms=(("interest", INTEREST, 1), ("views", VIEWS, 1)))
    experiment = parse(text, "x").experiment[0]
    log = ExposureLog(writer_store(local_settings))
    for user in range(1, 81):
        arm = assign(experiment, user)
        exposure = Exposure(f"r-{user}", user, "exp-r", arm.name, arm.name, arm.model, (user + 1, user + 2))
        log.record(exposure)
        if user % 3 == 0:
            log.record(Event(exposure, user + 1, "click"))
    assert log.flush()

    (tmp_path / "experiments.toml").write_text(text)
    (tmp_path / ".env").write_text(f"DYNAMODB_ENDPOINT_URL={local_settings.dynamodb_endpoint_url}\n"
                                   f"DYNAMODB_TABLE={local_settings.dynamodb_table}\n"
                                   "AWS_ACCESS_KEY_ID=local\nAWS_SECRET_ACCESS_KEY=local\nAWS_REGION=us-east-1\n")
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV} | {"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    result = subprocess.run([str(REPORT), "exp-r", "--out-dir", str(tmp_path / "out")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "exp-r" / "report.json").read_text())
    assert sum(v["exposures"] for v in report["variants"]) == 80

    (tmp_path / "experiments.toml").unlink()  # no default file, nothing named: one line saying what to do
    result = subprocess.run([str(REPORT), "exp-r"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: no experiments file: experiments.toml does not exist here; "
                                     "set EXPERIMENTS_FILE or pass --experiments")
