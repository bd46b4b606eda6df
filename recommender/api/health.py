"""``GET /health``: whether the database answers *and* every published run's table is there.

A pointer to a run whose table was dropped (by hand, or a restore without it) made every answer
a 503 while the old probe, which only asked whether the control table answered, said 200: a load
balancer and a monitor saw nothing.  So the probe also describes the tables the pointers name.

Why the answer comes from memory: a probe that asked the database on every call waited for it,
and under overload the database (and the worker's event loop between its calls) is exactly what
is slow, so the load balancer saw seconds-long probes and took a busy-but-working server out.
Each process keeps its last result (``DescribeTable`` of the control table, a ``Query`` of the
pointers, one ``DescribeTable`` per pointed table) for ``RUN_CHECK_SECONDS``; a probe after that
starts one refresh in the background and answers with the last result, so it never waits for
the database and a change is seen within about two intervals of probing.  The first probe of a
process, and every probe with ``RUN_CHECK_SECONDS=0``, checks inline.  Every call has the API's
short timeouts.  The result also sets the gauge ``similar_users_run_unavailable`` per model.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from flask import Flask, current_app

from recommender.api import metrics
from recommender.store.control import Pointer
from recommender.store.dynamo import StoreUnavailable

log = logging.getLogger(__name__)

_EXTENSION = "similar_users_health"


@dataclass(frozen=True)
class Health:
    reachable: bool
    unavailable_runs: tuple[Pointer, ...] = ()

    @property
    def ok(self) -> bool:
        return self.reachable and not self.unavailable_runs


class HealthCheck:
    """One process's view, refreshed at most every ``refresh_seconds`` (0: on every call).

    ``start_refresh(fn)`` runs a due refresh: a daemon thread by default (a greenlet once gevent
    has patched threading); the tests pass one that runs it at once, or holds it on an event.
    """

    def __init__(self, store: Any, refresh_seconds: float, clock: Callable[[], float] = time.monotonic,
                 start_refresh: Callable[[Callable[[], Any]], None] | None = None):
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._start_refresh = start_refresh or _in_background
        self._lock = threading.Lock()
        self._state: Health | None = None
        self._at = float("-inf")
        self._refreshing = False
        self._flagged: set[str] = set()

    def current(self) -> Health:
        with self._lock:
            state = self._state
            due = self._clock() - self._at >= self.refresh_seconds
            start = state is not None and due and self.refresh_seconds > 0 and not self._refreshing
            if start:
                self._refreshing = True
        if state is None or self.refresh_seconds <= 0:
            return self.refresh()
        if start:
            self._start_refresh(self.refresh)
        return self._state  # a refresh that ran at once (tests) has replaced it already

    def refresh(self) -> Health:
        """Ask the database now; the new result is what the next probes answer."""
        try:
            if not self.store.ping():
                state = Health(reachable=False)
            else:
                try:
                    missing = tuple(self.store.unavailable_runs())
                except StoreUnavailable:
                    state = Health(reachable=False)
                else:
                    state = Health(reachable=True, unavailable_runs=missing)
                    self._report(missing)
        except Exception:  # noqa: BLE001 - an unexpected failure must not leave the probe stuck on "refreshing"
            log.exception("health check failed")
            state = Health(reachable=False)
        with self._lock:
            self._state, self._at, self._refreshing = state, self._clock(), False
        return state

    def _report(self, missing: tuple[Pointer, ...]) -> None:
        flagged = {p.model_handle for p in missing}
        for model in flagged | self._flagged:
            metrics.RUN_UNAVAILABLE.labels(model).set(1 if model in flagged else 0)
        if flagged != self._flagged and missing:
            log.error("published run tables are missing: %s; re-run the generator or point the models back at their "
                      "previous run (docs/runbook.md)",
                      ", ".join(f"{p.table} (model {p.model_handle})" for p in missing))
        self._flagged = flagged


def _in_background(refresh: Callable[[], Any]) -> None:
    threading.Thread(target=refresh, name="health-refresh", daemon=True).start()


def init_health(app: Flask, store: Any, refresh_seconds: float) -> None:
    app.extensions[_EXTENSION] = HealthCheck(store, refresh_seconds)


def get_health() -> Health:
    return current_app.extensions[_EXTENSION].current()
