"""The commit point's two pieces in-process: the phase hook and the signal hold (the generator's
behaviour at each phase is tested on real processes in tests/test_run_generator.py)."""

from __future__ import annotations

import signal

import pytest

from recommender import stopping
from recommender.stopping import HeldSignals, InjectedFailure, checkpoint


class Stop(BaseException):
    pass


@pytest.fixture
def raising_sigterm():
    """A SIGTERM handler that raises, as the generator's does; restored afterwards."""
    def handler(signum, frame):
        raise Stop(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_held_signal_is_recorded_not_raised_and_replayed_on_request(raising_sigterm):
    held = HeldSignals()
    held.start()
    signal.raise_signal(signal.SIGTERM)  # would raise Stop without the hold
    assert held.received == [signal.SIGTERM]
    with pytest.raises(Stop):
        held.stop(replay=True)
    with pytest.raises(Stop):  # the generator's handler is back
        signal.raise_signal(signal.SIGTERM)


def test_stop_without_replay_only_restores_the_handlers(raising_sigterm):
    held = HeldSignals()
    held.start()
    signal.raise_signal(signal.SIGTERM)
    held.stop()
    assert held.received == [signal.SIGTERM]
    with pytest.raises(Stop):
        signal.raise_signal(signal.SIGTERM)


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        held = HeldSignals()
        held.start()
        signal.raise_signal(signal.SIGTERM)
        held.stop(replay=True)
        assert held.received == [] and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_checkpoint_acts_once_at_its_phase_only(monkeypatch, raising_sigterm):
    monkeypatch.setattr(stopping, "_fired", set())
    monkeypatch.setenv(stopping.STOP_AT_ENV, "write:error")
    checkpoint("fit")
    with pytest.raises(InjectedFailure, match=r"^injected failure at write \(GENERATOR_TEST_STOP_AT\)$"):
        checkpoint("write")
    checkpoint("write")  # once: the next model's write goes on
    monkeypatch.setenv(stopping.STOP_AT_ENV, "search")  # SIGTERM by default, delivered right there
    with pytest.raises(Stop):
        checkpoint("search")


def test_checkpoint_is_inert_unset_and_names_a_bad_value(monkeypatch):
    monkeypatch.setattr(stopping, "_fired", set())
    monkeypatch.delenv(stopping.STOP_AT_ENV, raising=False)
    for phase in stopping.PHASES:
        checkpoint(phase)
    monkeypatch.setenv(stopping.STOP_AT_ENV, "flip:SIGTERM")
    with pytest.raises(ValueError, match=r"^GENERATOR_TEST_STOP_AT='flip:SIGTERM': expected <phase>\[:<action>\], phase one of load, "):
        checkpoint("load")
