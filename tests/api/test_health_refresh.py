"""``/health`` answers from memory: a due refresh runs beside the probe, never in front of it.

The store here is a stand-in whose calls block on events, so that "the database is slow" is a
state the test holds, not a timing; the real store's answers are tested in test_run_unavailable.py.
"""

from __future__ import annotations

import threading

from recommender.api.health import HealthCheck
from recommender.api.run_check import RunCheck
from recommender.store.control import Pointer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowStore:
    """ping() waits for ``release`` once ``hold`` is set; ``missing`` is what unavailable_runs() says."""

    def __init__(self) -> None:
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.missing: list[Pointer] = []

    def ping(self) -> bool:
        self.calls += 1
        if self.hold:
            self.entered.set()
            assert self.release.wait(30), "the test never released the store"
        return True

    def unavailable_runs(self) -> list[Pointer]:
        return list(self.missing)


POINTER = Pointer(model_handle="tfidf_user_interest", run_id="r1", table="similar_users_r1", items=10, published_at=1)


def test_a_due_probe_answers_the_last_result_while_one_refresh_waits_for_the_database():
    store, clock, started = SlowStore(), Clock(), []
    check = HealthCheck(store, RunCheck(5, clock),
                        start_refresh=lambda refresh: started.append(threading.Thread(target=refresh)) or started[-1].start())
    assert check.current().ok and store.calls == 1  # the first probe checks inline

    store.hold, store.missing = True, [POINTER]
    clock.now += 5.1
    assert check.current().ok  # due: a refresh starts, the probe answers at once with the last result
    assert store.entered.wait(30)
    assert check.current().ok and check.current().ok  # the database still hangs: same answer, no second refresh
    assert len(started) == 1 and store.calls == 2

    store.release.set()
    started[0].join(30)
    assert not started[0].is_alive()
    state = check.current()
    assert not state.ok and state.reachable and state.unavailable_runs == (POINTER,)


def test_a_failed_refresh_reports_unreachable_and_the_next_due_probe_tries_again():
    store, clock = SlowStore(), Clock()
    check = HealthCheck(store, RunCheck(5, clock), start_refresh=lambda refresh: refresh())
    assert check.current().ok

    def broken() -> bool:
        raise RuntimeError("boom")

    store.ping = broken
    clock.now += 5
    assert not check.current().reachable
    store.ping = lambda: True
    clock.now += 5
    assert check.current().ok


def test_run_check_seconds_0_asks_the_database_on_every_probe():
    store = SlowStore()
    check = HealthCheck(store, RunCheck(0, Clock()))
    check.current(), check.current(), check.current()
    assert store.calls == 3
