"""Versioned publishing, the lock and clean-up, against the real DynamoDB Local jar."""

from __future__ import annotations

import time

import pytest

from recommender.store.dynamo import DynamoStore, NoPublishedRun
from recommender.store.items import StoredItem
from recommender.store.publisher import LockHeld, LockLost, RunPublisher
from tests.conftest import publish

pytestmark = pytest.mark.dynamodb

TFIDF, KNN = "tfidf_user_interest", "knn_collab_filtering_user_course_view"


def items(run_id: str, users=range(1, 131), models=(TFIDF, KNN), width: int = 2) -> list[StoredItem]:
    return [
        StoredItem.of(u, m, [(u + i + 1, 0.9) for i in range(width)], run_id=run_id, generated_at="2026-11-28T00:00:00Z")
        for m in models
        for u in users
    ]


def run_ids(n: int) -> list[str]:
    return [f"20260101T00000{i}Z-abcdef0{i}" for i in range(n)]


@pytest.fixture
def settings(local_settings):
    return local_settings.model_copy(update={"pointer_cache_seconds": 0})


def table_names(store: DynamoStore) -> set[str]:
    """The run tables of this test's prefix (the control table aside)."""
    names = store.client.get_paginator("list_tables").paginate().build_full_result()["TableNames"]
    return {n for n in names if n.startswith(store.prefix + "-") and n != store.control_table}


def test_publish_writes_every_item_and_flips_the_pointer(settings):
    store = DynamoStore.for_generator(settings)
    first, second = run_ids(2)
    publisher = publish(store, first, items(first), write_threads=3)
    assert publisher.counts == {TFIDF: 130, KNN: 130}  # > ten 25-item batches per model, 3 threads
    count = store.client.scan(TableName=store.run_table(first), Select="COUNT")["Count"]
    assert count == 260
    reader = DynamoStore.for_api(settings)
    assert reader.get(77, KNN).run_id == first
    publish(store, second, items(second, width=3))
    answer = reader.get(77, KNN)
    assert answer.run_id == second and len(answer.similar_users) == 3
    assert reader.ping()


def test_old_runs_are_dropped_after_keep_runs(settings):
    store = DynamoStore.for_generator(settings)
    ids = run_ids(4)
    for run_id in ids:
        publish(store, run_id, items(run_id, users=range(1, 4)), keep_runs=2)
    assert table_names(store) == {store.run_table(ids[2]), store.run_table(ids[3])}
    assert [r["sk"] for r in store.query_control("run")] == ids[2:]


def test_a_run_that_publishes_only_one_model_keeps_the_other_models_run(settings):
    store = DynamoStore.for_generator(settings)
    a, b, c = run_ids(3)
    publish(store, a, items(a, users=range(1, 4)), keep_runs=1)
    publish(store, b, items(b, users=range(1, 4), models=(TFIDF,)), keep_runs=1)
    publish(store, c, items(c, users=range(1, 4), models=(TFIDF,)), keep_runs=1)
    reader = DynamoStore.for_api(settings)
    assert reader.get(1, KNN).run_id == a  # still pointed at, so never dropped
    assert reader.get(1, TFIDF).run_id == c
    assert table_names(store) == {store.run_table(a), store.run_table(c)}


def test_an_unfinished_run_is_invisible_and_cleaned_up_by_the_next(settings):
    store = DynamoStore.for_generator(settings)
    a, dead, c = run_ids(3)
    publish(store, a, items(a, users=range(1, 4)))
    crashed = RunPublisher(store)
    crashed.begin(dead, (TFIDF, KNN))
    crashed.write(TFIDF, items(dead, users=range(1, 4), models=(TFIDF,)))
    crashed.lock._stop.set()  # the process "dies": no commit, no release; its lease must run out
    assert DynamoStore.for_api(settings).get(1, TFIDF).run_id == a
    store.client.update_item(  # fast-forward the dead run's lease
        TableName=store.control_table, Key={"pk": {"S": "lock"}, "sk": {"S": "generator"}},
        UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={":past": {"N": "0"}},
    )
    publish(store, c, items(c, users=range(1, 4)))
    assert store.run_table(dead) not in table_names(store)
    assert dead not in {r["sk"] for r in store.query_control("run")}


def test_a_second_generator_is_refused_while_the_lease_lives(settings):
    store = DynamoStore.for_generator(settings)
    a, b = run_ids(2)
    holder = RunPublisher(store, lease_seconds=30)
    holder.begin(a, (TFIDF,))
    with pytest.raises(LockHeld, match=rf"another generator run \({a} on .*holds the lock; it expires in \d+s"):
        RunPublisher(store).begin(b, (TFIDF,))
    holder.commit({TFIDF: holder.write(TFIDF, items(a, users=range(1, 3), models=(TFIDF,)))})
    holder.finish()
    publish(store, b, items(b, users=range(1, 3), models=(TFIDF,)))  # free again


def test_heartbeat_keeps_a_short_lease_alive(settings):
    store = DynamoStore.for_generator(settings)
    a, b = run_ids(2)
    holder = RunPublisher(store, lease_seconds=1.5)
    holder.begin(a, (TFIDF,))
    time.sleep(3)  # two lease lengths: only the heartbeat keeps it
    with pytest.raises(LockHeld):
        RunPublisher(store).begin(b, (TFIDF,))
    holder.abort()


def test_a_run_whose_lock_was_taken_over_cannot_publish(settings):
    store = DynamoStore.for_generator(settings)
    a, slow, thief = run_ids(3)
    publish(store, a, items(a, users=range(1, 3), models=(TFIDF,)))
    stale = RunPublisher(store, lease_seconds=60)
    stale.begin(slow, (TFIDF,))
    stale.lock._stop.set()
    stale.write(TFIDF, items(slow, users=range(1, 3), models=(TFIDF,)))
    store.client.update_item(
        TableName=store.control_table, Key={"pk": {"S": "lock"}, "sk": {"S": "generator"}},
        UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={":past": {"N": "0"}},
    )
    other = RunPublisher(store)
    other.begin(thief, (TFIDF,))
    with pytest.raises(LockLost):
        stale.commit({TFIDF: 2})
    assert DynamoStore.for_api(settings).get(1, TFIDF).run_id == a
    other.abort()


def test_abort_drops_the_run_table_and_keeps_the_pointer(settings):
    store = DynamoStore.for_generator(settings)
    a, b = run_ids(2)
    publish(store, a, items(a, users=range(1, 3)))
    failing = RunPublisher(store)
    failing.begin(b, (TFIDF,))
    failing.write(TFIDF, items(b, users=range(1, 3), models=(TFIDF,)))
    failing.abort()
    assert store.run_table(b) not in table_names(store)
    assert DynamoStore.for_api(settings).get(1, TFIDF).run_id == a


def test_pointer_is_cached_for_the_configured_time(local_settings):
    store = DynamoStore.for_generator(local_settings)
    a, b = run_ids(2)
    publish(store, a, items(a, users=range(1, 3), models=(TFIDF,)))
    reader = DynamoStore.for_api(local_settings.model_copy(update={"pointer_cache_seconds": 1.0}))
    start = float(int(time.time()))
    now = [start]
    reader.clock = lambda: now[0]  # the cache's clock, moved by hand
    assert reader.get(1, TFIDF).run_id == a
    publish(store, b, items(b, users=range(1, 3), models=(TFIDF,)))
    now[0] = start + 0.999
    assert reader.get(1, TFIDF).run_id == a  # cached pointer; run a is kept (KEEP_RUNS=2)
    now[0] = start + 1.0
    assert reader.get(1, TFIDF).run_id == b


def test_nothing_published_is_not_healthy_and_says_so(local_settings):
    reader = DynamoStore.for_api(local_settings)
    assert reader.ping() is False
    with pytest.raises(NoPublishedRun):  # the API's 503 no_published_run, not a 404 (issue 11.10)
        reader.get(1, TFIDF)
