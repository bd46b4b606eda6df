"""gunicorn settings for the API: ``gunicorn -c python:recommender.api.gunicorn_conf 'recommender.api:create_app()'``.

Command-line options (``--workers``, ``--bind``) still win.  The hooks keep Prometheus'
multiprocess mode right (``PROMETHEUS_MULTIPROC_DIR``, see ``recommender/api/metrics.py``).
"""

from __future__ import annotations

import os

# The app logs one line per request itself (with the request id); gunicorn's would be a second.
accesslog = None
# Behind a proxy, trust X-Forwarded-* only from the local machine (gunicorn's default).
forwarded_allow_ips = "127.0.0.1"


def on_starting(server) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker) -> None:
    """A dead worker's live gauges must stop counting (its counters stay in the totals)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
