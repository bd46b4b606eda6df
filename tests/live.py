"""A real gunicorn (several workers) serving the app on a free loopback port, for the HTTP-level
tests (newman, schemathesis, multiprocess metrics).  The app reads its settings from the
environment, exactly as in production."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

from tests.conftest import ROOT

GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BaseUrl(str):
    """The server's base URL, which also knows the gunicorn master's pid (to send it signals)."""

    pid: int


@contextmanager
def gunicorn_server(settings, log_path: Path, *, workers: int = 2, env: dict[str, str | None] | None = None,
                    cwd: Path = ROOT, app: str = "recommender.api:create_app()") -> Iterator[BaseUrl]:
    """Serve ``recommender.api:create_app()`` for ``settings``' DynamoDB table; yields the base URL.

    ``env``: variables to set, or with None to unset; ``cwd``: the server's working directory;
    ``app``: another app to serve (a test's wrapper of the service's, with an injection point).
    """
    port = free_port()
    server_env = {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    server_env = {
        **server_env,
        "DYNAMODB_ENDPOINT_URL": settings.dynamodb_endpoint_url,
        "DYNAMODB_TABLE": settings.dynamodb_table,
        # Set explicitly so that a developer's .env cannot change what the test expects.
        "API_KEYS": "",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    server_env = {k: v for k, v in server_env.items() if v is not None}
    log = open(log_path, "w")  # noqa: SIM115 - closed below; a file never blocks the server like a full pipe
    server = subprocess.Popen(
        [str(GUNICORN), "-c", str(ROOT / "recommender/api/gunicorn_conf.py"), "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", app],
        cwd=cwd, env=server_env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = BaseUrl(f"http://127.0.0.1:{port}")
    base.pid = server.pid
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/health", timeout=3).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not come up:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        log.close()
