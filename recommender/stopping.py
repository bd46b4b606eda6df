"""How a generator run stops: the pointer flip is a commit point.

Before the flip, a signal (SIGINT, SIGTERM) or an error aborts the run and publishes nothing.
The flip itself is one request whose outcome must be known before a signal is acted on, and
from the flip on nothing may undo the run: :class:`HeldSignals` records the signals that arrive
from just before the flip to the end of the run instead of raising them, so the flip, the
clean-up of old runs and the lock release finish, and the run then ends as "published, then
stopped" (:class:`StoppedAfterPublish`).  ``docs/operations/publishing.md`` ("Stopping a run") has the
table of what a signal does in each phase.

:func:`checkpoint` is a test hook: the pipeline calls it at each phase boundary, and the
environment variable ``GENERATOR_TEST_STOP_AT=<phase>[:<action>]`` makes the generator signal
itself (``SIGTERM``, the default, ``SIGINT``, ``SIGKILL``) or fail (``error``) the first time it
reaches that phase, so that a test can stop a real generator process at an exact phase, without
timing.  Unset (production), it does nothing.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

PHASES = ("load", "fit", "search", "write", "commit", "published", "cleanup")
ACTIONS = ("SIGTERM", "SIGINT", "SIGKILL", "error")
STOP_AT_ENV = "GENERATOR_TEST_STOP_AT"


class InjectedFailure(RuntimeError):
    """The failure :func:`checkpoint` raises for the ``error`` action."""


def _stop_at() -> tuple[str, str] | None:
    text = os.environ.get(STOP_AT_ENV, "").strip()
    if not text:
        return None
    phase, _, action = text.partition(":")
    action = action or "SIGTERM"
    if phase not in PHASES or action not in ACTIONS:
        raise ValueError(f"{STOP_AT_ENV}={text!r}: expected <phase>[:<action>], phase one of {', '.join(PHASES)}, "
                         f"action one of {', '.join(ACTIONS)}")
    return phase, action


_fired: set[str] = set()


def checkpoint(phase: str) -> None:
    """Test hook at a phase boundary: act once as ``GENERATOR_TEST_STOP_AT`` says (module docstring)."""
    stop_at = _stop_at()
    if stop_at is None or stop_at[0] != phase or phase in _fired:
        return
    _fired.add(phase)
    action = stop_at[1]
    if action == "error":
        raise InjectedFailure(f"injected failure at {phase} ({STOP_AT_ENV})")
    # raise_signal runs the Python handler before it returns: the signal lands exactly here.
    signal.raise_signal(getattr(signal, action))


class StoppedAfterPublish(BaseException):
    """A signal arrived after the flip: the run *is* published (and cleaned up); the process should end.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it."""

    def __init__(self, report: object, signum: int):
        super().__init__(f"{signal.Signals(signum).name} after the run was published")
        self.report = report
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


class HeldSignals:
    """SIGINT and SIGTERM recorded instead of acted on, from :meth:`start` to :meth:`stop`.

    Python runs signal handlers in the main thread only, so elsewhere (a run in a worker thread)
    this holds nothing; a signal the process ignores (SIG_IGN) stays ignored.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, object] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous = {s: signal.signal(s, self._record) for s in self.SIGNALS
                          if signal.getsignal(s) is not signal.SIG_IGN}

    def stop(self, replay: bool = False) -> None:
        """Restore the handlers; with ``replay``, the first held signal is raised now, as if it had just arrived."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if replay and self.received:
            signal.raise_signal(self.received[0])
