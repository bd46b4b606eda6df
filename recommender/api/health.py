"""``GET /health``: whether the database answers *and* every published run's table is there.

A pointer to a run whose table was dropped (by hand, or a restore without it) made every answer
a 503 while the old probe, which only asked whether the control table answered, said 200: a load
balancer and a monitor saw nothing.  So the probe also describes the tables the pointers name.

Whether the database answers is asked on every call (one ``DescribeTable`` of the control
table, as before); the run tables' answer is kept for ``RUN_CHECK_SECONDS`` per process (a load
balancer polling every second then costs one ``Query`` of the pointers and one ``DescribeTable``
per pointed table per interval), behind a lock so that concurrent probes share one round.  Every
call has the API's short timeouts, so ``/health`` answers within a bounded time even when the
database is gone.  The result also sets the gauge
``similar_users_run_unavailable`` per model.
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
    """One process's view: the database asked on every call, the run tables every ``refresh_seconds`` (0: every call)."""

    def __init__(self, store: Any, refresh_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._missing: tuple[Pointer, ...] = ()
        self._at = float("-inf")
        self._flagged: set[str] = set()

    def current(self) -> Health:
        if not self.store.ping():
            return Health(reachable=False)
        with self._lock:
            if self._clock() - self._at >= self.refresh_seconds:
                try:
                    self._missing = tuple(self.store.unavailable_runs())
                except StoreUnavailable:
                    return Health(reachable=False)
                self._at = self._clock()
                self._report(self._missing)
            return Health(reachable=True, unavailable_runs=self._missing)

    def _report(self, missing: tuple[Pointer, ...]) -> None:
        flagged = {p.model_handle for p in missing}
        for model in flagged | self._flagged:
            metrics.RUN_UNAVAILABLE.labels(model).set(1 if model in flagged else 0)
        if flagged != self._flagged and missing:
            log.error("published run tables are missing: %s; re-run the generator or point the models back at their "
                      "previous run (docs/runbook.md)",
                      ", ".join(f"{p.table} (model {p.model_handle})" for p in missing))
        self._flagged = flagged


def init_health(app: Flask, store: Any, refresh_seconds: float) -> None:
    app.extensions[_EXTENSION] = HealthCheck(store, refresh_seconds)


def get_health() -> Health:
    return current_app.extensions[_EXTENSION].current()
