"""The experiments an API process is running now, reloaded when the file changes.

Each process checks the file's modification time at most every ``EXPERIMENTS_RELOAD_SECONDS``
(one ``stat`` on the request path, no thread), so editing the file (pausing or stopping an
experiment, changing weights) reaches every worker within that time without a restart.  A file
broken *while the service runs* is logged (ERROR) and counted, and the last good definitions stay
in force: a typo must not take the service down.  A file that went missing or empty meanwhile is
logged at WARNING and likewise changes nothing: ending every experiment takes a file that says
``experiment = []`` (or statuses set to ``stopped``).  At start a broken, empty or missing file
is refused (see :func:`recommender.experiments.definitions.load`).

Which file: ``EXPERIMENTS_FILE``; when that is not set, ``experiments.toml`` of the working
directory if it exists (:func:`experiments_file`, which ``similar-users-ab-report`` uses too).

Sending SIGHUP to gunicorn's master restarts the workers gracefully, which reads the file again
at once (the workers then start from the file as it is; a broken one leaves them without
experiments, answering from the default model, until it is fixed).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from recommender.experiments import definitions
from recommender.experiments.definitions import Experiment, ExperimentsFile, ExperimentsFileError, NothingDeclared

log = logging.getLogger(__name__)

# Set by gunicorn's master once it has checked the file (gunicorn_conf.on_starting): workers
# booted later (SIGHUP) must not fail to boot on a broken file, or gunicorn would halt.
CHECKED_ENV = "SIMILAR_USERS_EXPERIMENTS_CHECKED"


def experiments_file(settings) -> str | None:
    """The experiments file of the service (and the report): ``EXPERIMENTS_FILE`` when set, else its
    default, ``experiments.toml`` of the working directory, when that exists; None: no experiments."""
    path = settings.experiments_file
    if not path or ("experiments_file" not in settings.model_fields_set and not Path(path).is_file()):
        return None
    return path


class LiveExperiments:
    """Thread-safe holder of the current :class:`ExperimentsFile`, swapped whole on reload."""

    def __init__(self, path: str | Path | None, reload_seconds: float = 5.0, *, strict: bool = True):
        self.path = Path(path) if path else None
        self.reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._checked_at = time.monotonic()
        self._mtime: float | None = None
        self.reload_errors = 0
        self.current = ExperimentsFile()
        if self.path is not None:
            self._mtime = self._stat()
            try:
                self.current = definitions.load(self.path)
            except ExperimentsFileError as exc:
                if strict:
                    raise
                self.reload_errors += 1
                log.error("%s; serving without experiments until the file is fixed", exc)

    def _stat(self) -> float | None:
        try:
            return os.stat(self.path).st_mtime_ns  # type: ignore[arg-type]
        except OSError:
            return None

    def reload(self) -> bool:
        """Read the file again now; False (and the old definitions kept) when it is broken."""
        if self.path is None:
            return True
        with self._lock:
            self._mtime = self._stat()
            try:
                self.current = definitions.load(self.path)
            except NothingDeclared as exc:
                self.reload_errors += 1
                log.warning("%s; keeping the experiments loaded before (to end them all, write `experiment = []`)", exc)
                return False
            except ExperimentsFileError as exc:
                self.reload_errors += 1
                log.error("%s; keeping the experiments loaded before", exc)
                return False
            log.info("experiments reloaded from %s: %s", self.path,
                     ", ".join(f"{e.name} ({e.status})" for e in self.current.experiment) or "none")
            return True

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked_at < self.reload_seconds:
            return
        self._checked_at = now
        if self._stat() != self._mtime:
            self.reload()

    def active(self, now: datetime | None = None) -> Experiment | None:
        """The experiment taking the traffic now, if any (the file re-read when it changed)."""
        self._maybe_reload()
        return self.current.active(now or datetime.now(timezone.utc))


def check_at_start(path: str | None) -> None:
    """gunicorn master: refuse to start on a broken file (one line on stderr, exit 2)."""
    if not path:
        return
    try:
        definitions.load(path)
    except ExperimentsFileError as exc:
        import sys

        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    os.environ[CHECKED_ENV] = "1"
