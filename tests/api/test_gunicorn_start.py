"""gunicorn started by hand with the service's settings file, as an operator would (no ``make serve``,
no ``run_server.py --check``): the public-address rule and a clean shutdown are the settings file's.

Nothing here needs the database (it points at a loopback port where nothing listens: ``/health``
answers 503 at once), and only loopback receives traffic, whatever address is bound.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.conftest import ROOT
from tests.live import GUNICORN, free_port

WAIT = 60  # seconds: only a safety net against a hung start, never what the test measures


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in ("PROMETHEUS_MULTIPROC_DIR", "PORT", "HOST")}
    return {**env, "PYTHONPATH": str(ROOT), "API_KEYS": "", "ALLOW_PUBLIC_WITHOUT_KEYS": "", "EXPERIMENTS_FILE": "",
            "EVALUATION_RESULTS_FILE": "", "DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "DYNAMODB_TABLE": "test_gunicorn_start", "LOG_FORMAT": "text", **extra}


def command(bind: str, workers: int = 1) -> list[str]:
    return [str(GUNICORN), "-c", "recommender/api/gunicorn_conf.py", "--workers", str(workers), "--bind", bind,
            "recommender.api:create_app()"]


@contextmanager
def serving(bind: str, port: int, log: Path, **env: str) -> Iterator[subprocess.Popen]:
    """gunicorn (one worker) on ``bind``, once its app has answered over loopback; stopped by SIGTERM."""
    with open(log, "w") as out:
        server = subprocess.Popen(command(bind), cwd=ROOT, env=server_env(**env), stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + WAIT
            while True:  # the worker's app loaded (its logging set up) once it answers
                assert server.poll() is None, f"gunicorn exited {server.returncode}:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"gunicorn did not come up:\n{log.read_text()[-3000:]}"
                try:
                    requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            yield server
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            try:
                server.wait(WAIT)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)


PUBLIC = ["0.0.0.0", "[::]"]


@pytest.mark.parametrize("host", PUBLIC)
def test_gunicorn_refuses_a_public_address_without_api_keys(host):
    bind = f"{host}:{free_port()}"
    refused = subprocess.run(command(bind), cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=WAIT)
    assert refused.returncode == 2, refused.stderr[-3000:]
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --bind {bind} is reachable from other machines but API_KEYS is empty: set API_KEYS, "
                      "or bind 127.0.0.1 (the default), or set ALLOW_PUBLIC_WITHOUT_KEYS=true if something in front "
                      "checks clients"], refused.stderr
    # Refused before anything listened or any worker booted.
    assert "Listening at" not in refused.stderr and "Booting worker" not in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize("env", [{"API_KEYS": "k-1"}, {"ALLOW_PUBLIC_WITHOUT_KEYS": "true"}], ids=["keys", "allowed"])
def test_gunicorn_serves_a_public_address_with_keys_or_when_allowed(env, tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with serving(f"0.0.0.0:{port}", port, log, **env) as server:
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code in (200, 503)
    assert server.returncode == 0, log.read_text()[-3000:]
    assert f"Listening at: http://0.0.0.0:{port}" in log.read_text()


def test_gunicorn_refuses_api_keys_no_client_could_send():
    """Every file and setting read at start is validated by the master, API_KEYS too (one line, no key shown)."""
    refused = subprocess.run(command(f"127.0.0.1:{free_port()}"), cwd=ROOT, env=server_env(API_KEYS='["k-1", "k-2"]'),
                             capture_output=True, text=True, timeout=WAIT)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert [line for line in refused.stderr.splitlines() if line.startswith("error:")] == [
        "error: setting API_KEYS=…: a comma-separated list, API_KEYS=key-one,key-two, not JSON"], refused.stderr
    assert "Booting worker" not in refused.stderr and "k-1" not in refused.stderr


def test_gunicorn_on_loopback_needs_no_key(tmp_path):
    port = free_port()
    with serving(f"127.0.0.1:{port}", port, tmp_path / "gunicorn.log") as server:
        pass
    assert server.returncode == 0


def test_workers_start_and_stop_without_logging_errors(tmp_path):
    """gunicorn's own lines in a worker (``Worker exiting (pid: …)`` at SIGTERM) print the process id:
    the app's logging set-up must leave the record's ``process`` in place."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with serving(f"127.0.0.1:{port}", port, log) as server:
        pass
    text = log.read_text()
    assert server.returncode == 0, text[-3000:]
    # The worker's own line was written, with its pid (gunicorn's format: ``[time] [pid] [INFO] …``).
    exiting = re.findall(r"^\[[^]]+\] \[(\d+)\] \[INFO\] Worker exiting \(pid: (\d+)\)$", text, re.M)
    assert len(exiting) == 1 and exiting[0][0] == exiting[0][1], text[-3000:]
    assert "Logging error" not in text and "TypeError" not in text, text[-5000:]
