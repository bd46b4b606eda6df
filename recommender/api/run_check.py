"""Whether each pointed run's table can be read, as this process last saw it: one record, one clock.

A run's table can vanish under its pointer (dropped by hand, a restore without it).  Three parts
of the service care, and all of them use this record, on its clock and ``RUN_CHECK_SECONDS``:

* the item cache (``item_cache.py``) answers a run's items from memory only while the run was
  seen readable within ``RUN_CHECK_SECONDS``; then one request reads its table (the others keep
  answering from memory meanwhile) and reports what it found;
* every request whose read finds the table missing (``RunUnavailable``, the 503 ``run_unavailable``)
  reports it, so the cache stops answering for that run at once;
* ``/health`` (``health.py``) re-checks every pointed table each ``RUN_CHECK_SECONDS`` on the same
  clock and reports the missing ones here too.

The run's *pointer* has its own, server-wide cache (``recommender/store/pointer_cache.py``, wall
clock, ``POINTER_CACHE_SECONDS``): which run a model serves, not whether that run can be read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RunCheck:
    """Per run id, when its table last answered (or when the one check under way began)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}

    def trusted(self, run_id: str) -> float | None:
        """None while ``run_id`` was seen readable within ``seconds`` or a check of it is under way.
        Otherwise the caller is the one that checks it (the others trust the run meanwhile): the
        time of its claim, for :meth:`unreadable`."""
        now = self.clock()
        with self._lock:
            if now - self._seen.get(run_id, float("-inf")) <= self.seconds:
                return None
            self._seen[run_id] = now
            return now

    def readable(self, run_id: str) -> None:
        """A read of the run's table has just succeeded."""
        now = self.clock()
        with self._lock:
            self._seen[run_id] = now

    def unreadable(self, run_id: str, claim: float | None = None) -> None:
        """The run's table could not be read: every next request reads through until one succeeds.
        With ``claim`` (a check that failed), only if no later read has reported meanwhile."""
        with self._lock:
            if claim is None or self._seen.get(run_id) == claim:
                self._seen.pop(run_id, None)

    def due(self, since: float) -> bool:
        """``RUN_CHECK_SECONDS`` have passed since ``since`` (a time of :attr:`clock`)."""
        return self.clock() - since >= self.seconds
