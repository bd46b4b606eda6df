"""The API under gunicorn in a child process, for the tools and benchmarks that drive it (the A/B demo,
``make bench``): what ``make serve`` runs, on a loopback port, stopped by its own process group.

Packaged (not in ``benchmarks/``) because the installed ``similar-users-ab-demo`` needs it outside a
checkout: gunicorn runs as ``python -m gunicorn`` with the interpreter running the caller (the one
whose environment has the package and gunicorn), and the settings file is the installed package's
``recommender/api/gunicorn_conf.py``, loaded by path as that file asks.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import recommender

GUNICORN_CONF = Path(recommender.__file__).resolve().parent / "api" / "gunicorn_conf.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """``gunicorn -c <package>/api/gunicorn_conf.py --workers N --bind 127.0.0.1:PORT 'recommender.api:create_app()'``
    (gevent workers, as ``make serve``; ``extra_args`` come later, so they win), started in ``cwd``
    (whose ``.env`` the master reads) in its own session; a ``with`` block waits for ``/health``.

    ``port``: a fixed port, else any free one.
    """

    def __init__(self, cwd: Path, env: dict[str, str], log_path: Path, workers: int = 2,
                 extra_args: list[str] | None = None, port: int | None = None):
        self.port = port or free_port()
        self.cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
                    "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
                    *(extra_args or []), "recommender.api:create_app()"]
        self.cwd, self.env, self.log_path = cwd, env, log_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed by stop(); a file never blocks the server like a pipe
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer /health within 60 s; see {self.log_path}")

    def stop(self) -> None:
        """Graceful: SIGTERM to our own gunicorn's group (by id), in which each worker finishes its
        requests and drains its queues; SIGKILL after 20 s."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()

    def __exit__(self, *exc) -> None:
        self.stop()
