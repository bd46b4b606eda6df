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
The interval runs on the clock of the service's :class:`~recommender.api.run_check.RunCheck`,
and the missing tables a refresh finds are reported to it (the item cache then stops answering
for those runs from memory).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from flask import Flask, current_app

from recommender.api.http import metrics
from recommender.api.run_check import RunCheck
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
    """One process's view, refreshed at most every ``run_check.seconds`` (0: on every call).

    ``start_refresh(fn)`` runs a due refresh: a daemon thread by default (a greenlet once gevent
    has patched threading); the tests pass one that runs it at once, or holds it on an event.
    """

    def __init__(self, store: Any, run_check: RunCheck,
                 start_refresh: Callable[[Callable[[], Any]], None] | None = None):
        self.store = store
        self.run_check = run_check
        self._start_refresh = start_refresh or _in_background
        self._lock = threading.Lock()
        self._state: Health | None = None
        self._at = float("-inf")
        self._refreshing = False
        self._flagged: set[str] = set()

    def current(self) -> Health:
        seconds = self.run_check.seconds
        with self._lock:
            state = self._state
            start = state is not None and self.run_check.due(self._at) and seconds > 0 and not self._refreshing
            if start:
                self._refreshing = True
        if state is None or seconds <= 0:
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
        for pointer in state.unavailable_runs:
            self.run_check.unreadable(pointer.run_id)
        with self._lock:
            self._state, self._at, self._refreshing = state, self.run_check.clock(), False
        return state

    def _report(self, missing: tuple[Pointer, ...]) -> None:
        flagged = {p.model_handle for p in missing}
        for model in flagged | self._flagged:
            metrics.RUN_UNAVAILABLE.labels(model).set(1 if model in flagged else 0)
        if flagged != self._flagged and missing:
            log.error("published run tables are missing: %s; re-run the generator or point the models back at their "
                      "previous run (docs/operations/index.md, Runbook)",
                      ", ".join(f"{p.table} (model {p.model_handle})" for p in missing))
        self._flagged = flagged


def _in_background(refresh: Callable[[], Any]) -> None:
    threading.Thread(target=refresh, name="health-refresh", daemon=True).start()


def init_health(app: Flask, store: Any, run_check: RunCheck) -> None:
    app.extensions[_EXTENSION] = HealthCheck(store, run_check)


def get_health() -> Health:
    return current_app.extensions[_EXTENSION].current()
