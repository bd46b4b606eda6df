"""Prometheus metrics (``GET /metrics``), correct under gunicorn with several workers.

Each gunicorn worker is its own process with its own counters.  When ``PROMETHEUS_MULTIPROC_DIR``
is set (``make serve`` sets it to a fresh ``.run/prometheus``), prometheus-client keeps every
process's values in memory-mapped files there, and ``/metrics`` adds them up over all workers,
so whichever worker answers a scrape reports the whole server.  The variable must be set before
the workers start and the folder emptied between server runs; ``gunicorn_conf.child_exit``
tells prometheus-client when a worker has gone.

Label values are bounded: ``endpoint`` is the matched route (``unmatched`` for unknown paths),
``model_handle`` one of the known handles or ``none``, so a scanner cannot blow up the series.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
if MULTIPROC_ENV in os.environ and not os.environ[MULTIPROC_ENV].strip():
    # prometheus-client switches on the variable's mere presence; empty means off here.
    del os.environ[MULTIPROC_ENV]
if os.environ.get(MULTIPROC_ENV):
    # Values are memory-mapped files in that folder: it must exist before the first metric.
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

from prometheus_client import (  # noqa: E402  (after the folder exists)
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)

REQUESTS = Counter(
    "similar_users_http_requests",
    "HTTP requests answered, by route, method, status and model",
    ["endpoint", "method", "status", "model_handle"],
)
LATENCY = Histogram(
    "similar_users_http_request_duration_seconds",
    "Time to answer an HTTP request, by route and method",
    ["endpoint", "method"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
SHED = Counter(
    "similar_users_http_requests_shed",
    "Requests refused with 503 overloaded because the worker had MAX_IN_FLIGHT requests in flight (recommender/api/http/shedding.py)",
)
STORE_ERRORS = Counter(
    "similar_users_store_errors",
    "DynamoDB unreachable (StoreUnavailable on a lookup, failed ping on /health)",
    ["operation"],
)

RUN_UNAVAILABLE = Gauge(
    "similar_users_run_unavailable",
    "1 while the run a model's pointer names has no table (this server's last /health probe), else 0",
    ["model_handle"],
    multiprocess_mode="livemax",
)
RUN_UNAVAILABLE_ANSWERS = Counter(
    "similar_users_run_unavailable_answers",
    "Requests answered 503 run_unavailable (the run's table is missing), by model",
    ["model_handle"],
)

GC_PAUSES = Histogram(
    "similar_users_gc_pause_seconds",
    "Garbage collections of generations 1 and 2 in the workers, by generation: while one runs, "
    "every request of that worker waits",
    ["generation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


def watch_gc() -> None:
    """Time this process's older-generation collections into ``GC_PAUSES`` (once per process).

    Why: a full collection stops the whole worker, so its pauses are the first suspect when the
    latency tail or ``/health`` is slow under load.  Generation 0 runs thousands of times a second
    and stays short (it only walks the newest objects), so it is not timed: a histogram update
    each time would cost more than it tells.
    """
    if any(getattr(cb, "_similar_users", False) for cb in gc.callbacks):
        return
    children = {1: GC_PAUSES.labels("1"), 2: GC_PAUSES.labels("2")}
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        child = children.get(info["generation"])
        if child is None:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            child.observe(time.perf_counter() - started[0])

    callback._similar_users = True  # type: ignore[attr-defined]
    gc.callbacks.append(callback)


#: The labelled children per label values (bounded, see above): ``labels()`` validates and locks
#: on every call, which was a third of recording a request.
_children: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}


def observe(endpoint: str, method: str, status: int, model_handle: str, seconds: float) -> None:
    key = (endpoint, method, status, model_handle)
    children = _children.get(key)
    if children is None:
        children = _children[key] = (REQUESTS.labels(endpoint, method, str(status), model_handle),
                                     LATENCY.labels(endpoint, method))
    children[0].inc()
    children[1].observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric: summed over all workers in multiprocess mode."""
    # The mode prometheus-client chose when it was imported (a variable set later changes nothing).
    if getattr(values.ValueClass, "_multiprocess", False):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
