"""A published run whose table is gone, on the real DynamoDB Local: 503 ``run_unavailable`` (never
"no similar users stored"), ``/health`` says so and names the run, the metrics count it, and the
documented recovery (a new run) brings everything back.  The run check's clock is injected, and
one real gunicorn shows the whole thing within 10 s with the default settings."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client import REGISTRY

from recommender.api import create_app
from recommender.api.health import HealthCheck
from recommender.store.dynamo import DynamoStore, RunUnavailable
from recommender.api.item_cache import CachedItems
from recommender.api.run_check import RunCheck
from tests.api.conftest import MODELS, seed_for
from tests.conftest import publish
from tests.live import gunicorn_server

pytestmark = pytest.mark.dynamodb

FIRST = "20260101T000000Z-seed0000"  # the run seed_items publishes
SECOND = "20260102T000000Z-seed0001"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gauge(model: str) -> float | None:
    return REGISTRY.get_sample_value("similar_users_run_unavailable", {"model_handle": model})


def answered_unavailable(model: str) -> float:
    return REGISTRY.get_sample_value("similar_users_run_unavailable_answers_total", {"model_handle": model}) or 0.0


def drop_run(settings, run_id: str = FIRST) -> None:
    store = DynamoStore.for_generator(settings)
    store.drop_table(store.run_table(run_id))


def test_a_missing_run_table_is_503_run_unavailable_and_health_names_it(local_settings, seed_items):
    seed_items(seed_for((999, 1)))
    # RUN_CHECK_SECONDS=0: every request checks (the clocked variant is below); item cache on.
    app = create_app(local_settings.model_copy(update={"run_check_seconds": 0, "item_cache_size": 1000}))
    client = app.test_client()
    assert client.post("/similar-users/", json={"user_handle": 999}).status_code == 200  # now in the item cache
    assert client.get("/health").status_code == 200
    before = answered_unavailable(MODELS[0])

    drop_run(local_settings)

    for user in (999, 1, 424242):  # cached, not cached, and a user no run has: all the service's fault
        response = client.post("/similar-users/", json={"user_handle": user})
        assert response.status_code == 503, (user, response.get_json())
        body = response.get_json()
        assert body["error"] == "run_unavailable" and MODELS[0] in body["message"]
    assert answered_unavailable(MODELS[0]) == before + 3
    health = client.get("/health")
    assert health.status_code == 503
    body = health.get_json()
    table = f"{local_settings.dynamodb_table}-{FIRST}"
    assert (body["status"], body["error"]) == ("unavailable", "run_unavailable")
    assert table in body["message"] and FIRST in body["message"]
    assert sorted(r["model_handle"] for r in body["unavailable_runs"]) == sorted(MODELS)
    assert {(r["run_id"], r["table"]) for r in body["unavailable_runs"]} == {(FIRST, table)}
    assert all(gauge(m) == 1 for m in MODELS)

    # The runbook's recovery: a new complete run (the generator) takes over, no restart.
    publish(DynamoStore.for_generator(local_settings), SECOND, seed_for((999, 1)))
    assert client.get("/health").status_code == 200
    assert all(gauge(m) == 0 for m in MODELS)
    answer = client.post("/similar-users/", json={"user_handle": 1})
    assert answer.status_code == 200 and answer.get_json()[0]["similar_users"]


def test_the_store_raises_run_unavailable_not_none(local_settings, seed_items):
    seed_items(seed_for((999,)))
    reader = DynamoStore.for_api(local_settings)
    assert reader.get(999, MODELS[0]) is not None and reader.get(5, MODELS[0]) is None
    assert reader.unavailable_runs() == []
    drop_run(local_settings)
    with pytest.raises(RunUnavailable) as caught:
        reader.get(5, MODELS[0])
    assert caught.value.pointer.run_id == FIRST
    assert {p.model_handle for p in reader.unavailable_runs()} == set(MODELS)


def test_health_and_cached_items_trust_a_run_for_run_check_seconds_only(local_settings, seed_items):
    seed_items(seed_for((999,)))
    clock = Clock()
    reader = DynamoStore.for_api(local_settings)
    check = RunCheck(5, clock)  # one record and clock for both
    cache = CachedItems(reader, 100, check)
    health = HealthCheck(cache, check, start_refresh=lambda refresh: refresh())  # due refresh at once
    assert cache.get(999, MODELS[0]) is not None and health.current().ok

    drop_run(local_settings)
    clock.now += 4.9  # within RUN_CHECK_SECONDS: the last probe and the cached item still stand
    assert health.current().ok
    assert cache.get(999, MODELS[0]) is not None
    clock.now += 0.2  # past it: both look again
    assert not health.current().ok and health.current().reachable
    assert [p.run_id for p in health.current().unavailable_runs] == [FIRST] * len(MODELS)
    with pytest.raises(RunUnavailable):
        cache.get(999, MODELS[0])


@pytest.mark.parametrize("finder", ["health", "request"])
def test_a_table_found_missing_by_health_or_a_request_ends_the_cached_answers_at_once(local_settings, seed_items, finder):
    """One record of which runs are readable: within ``RUN_CHECK_SECONDS`` of the last successful
    read, a ``/health`` refresh or a request that finds the table missing stops the item cache
    answering that run from memory (the clock does not move)."""
    seed_items(seed_for((999, 1)))
    clock = Clock()
    reader = DynamoStore.for_api(local_settings)
    check = RunCheck(5, clock)
    cache = CachedItems(reader, 100, check)
    health = HealthCheck(cache, check, start_refresh=lambda refresh: refresh())
    assert cache.get(999, MODELS[0]) is not None and health.current().ok
    drop_run(local_settings)
    assert cache.get(999, MODELS[0]) is not None  # from memory: the run is still trusted
    if finder == "health":
        assert [p.run_id for p in health.refresh().unavailable_runs] == [FIRST] * len(MODELS)
    else:
        with pytest.raises(RunUnavailable):
            cache.get(1, MODELS[0])  # not in memory: read, and the table is gone
    with pytest.raises(RunUnavailable):
        cache.get(999, MODELS[0])


def test_gunicorn_with_default_settings_reports_a_dropped_run_within_10_seconds(seeded_settings, tmp_path):
    """What an operator sees: drop the run tables under a running server (control table kept)."""
    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log", workers=2) as base:
        for _ in range(6):  # both workers cache user 999's answer
            assert requests.post(f"{base}/similar-users/", json={"user_handle": 999}, timeout=10).status_code == 200
        drop_run(seeded_settings)
        dropped = time.monotonic()
        streak, last = 0, None  # 503 and unhealthy from every worker: eight pairs in a row
        while streak < 8 and time.monotonic() - dropped < 10:
            answer = requests.post(f"{base}/similar-users/", json={"user_handle": 999}, timeout=10)
            health = requests.get(f"{base}/health", timeout=10)
            last = (answer.status_code, answer.json().get("error") if answer.status_code != 200 else None,
                    health.status_code, health.json().get("error"))
            streak = streak + 1 if last == (503, "run_unavailable", 503, "run_unavailable") else 0
            time.sleep(0.05)
        took = time.monotonic() - dropped
        assert streak == 8, f"still {last} {took:.1f} s after dropping the run's table"
        print(f"503 and unhealthy on every request {took:.2f} s after the drop")
