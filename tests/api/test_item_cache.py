"""The item cache on the real DynamoDB Local: hits need no read, a new run is never served stale."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from recommender.api.item_cache import CachedItems, with_item_cache
from recommender.api.run_check import RunCheck
from recommender.store.dynamo import DynamoStore
from recommender.store.items import StoredItem
from tests.conftest import publish

pytestmark = pytest.mark.dynamodb

TFIDF = "tfidf_user_interest"


class CountingClient:
    """The read path's real client, counting the item reads that reach DynamoDB (not a mock: it forwards)."""

    def __init__(self, client):
        self.client, self.item_reads = client, 0

    def get_item(self, **kwargs):
        if not kwargs["TableName"].endswith("-control"):
            self.item_reads += 1
        return self.client.get_item(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("similar_users_item_cache_lookups_total", {"result": result}) or 0.0


def run(run_id: str, first_neighbour: int) -> list[StoredItem]:
    return [StoredItem.of(u, TFIDF, [(first_neighbour, 0.9)], run_id=run_id) for u in range(1, 6)]


def test_hits_skip_the_database_and_a_new_run_replaces_every_answer(local_settings):
    settings = local_settings.model_copy(update={"pointer_cache_seconds": 0})
    writer = DynamoStore.for_generator(local_settings)
    publish(writer, "20260101T000001Z-aaaaaaaa", run("20260101T000001Z-aaaaaaaa", 100))
    reader = DynamoStore.for_api(settings)
    reader.client = counting = CountingClient(reader.client)
    cache = with_item_cache(reader, 3, RunCheck(3600))  # no re-check of the run's table in this test
    assert isinstance(cache, CachedItems)
    hits, misses = lookups("hit"), lookups("miss")

    assert cache.get(1, TFIDF).similar_users == [100]
    assert cache.get(1, TFIDF).similar_users == [100]
    assert cache.get(999, TFIDF) is None and cache.get(999, TFIDF) is None  # "no row" is cached too
    assert counting.item_reads == 2
    assert (lookups("hit") - hits, lookups("miss") - misses) == (2, 2)

    for user in (2, 3, 4):  # bounded: three entries, least recently used out first
        cache.get(user, TFIDF)
    assert len(cache) == 3
    reads = counting.item_reads
    cache.get(1, TFIDF)
    assert counting.item_reads == reads + 1  # user 1 had been evicted
    cache.get(3, TFIDF)  # a hit: 3 is now the most recently used, 4 the least
    cache.get(5, TFIDF)
    reads = counting.item_reads
    cache.get(3, TFIDF)
    assert counting.item_reads == reads  # kept: used, not merely inserted, recently
    cache.get(4, TFIDF)
    assert counting.item_reads == reads + 1  # out

    publish(writer, "20260101T000002Z-bbbbbbbb", run("20260101T000002Z-bbbbbbbb", 200))
    assert [cache.get(u, TFIDF).similar_users for u in range(1, 6)] == [[200]] * 5  # new run id: new keys


def test_size_zero_is_no_cache(local_settings):
    store = DynamoStore.for_api(local_settings)
    assert with_item_cache(store, 0, RunCheck(5)) is store


def test_a_hit_is_the_item_read_and_the_cache_holds_nothing_the_garbage_collector_walks(local_settings):
    """A full collection walks every tracked object: a full cache of tracked items stalled each
    worker's requests for the length of that walk.  Oracle: ``gc.is_tracked`` after a collection."""
    import gc

    from recommender.store.items import Neighbour, Reason

    settings = local_settings.model_copy(update={"pointer_cache_seconds": 0})
    run_id = "20260101T000003Z-cccccccc"
    item = StoredItem.of(7, TFIDF, [(8, 0.9), (9, 0.8)], run_id=run_id)
    publish(DynamoStore.for_generator(local_settings), run_id, [item])
    cache = with_item_cache(DynamoStore.for_api(settings), 10, RunCheck(3600))
    read = cache.get(7, TFIDF)
    assert cache.get(7, TFIDF) == read and read.similar_users == [8, 9] and read.run_id == run_id
    assert cache.get(404, TFIDF) is None and cache.get(404, TFIDF) is None
    gc.collect()
    assert len(cache._items) == 2 and not any(gc.is_tracked(entry) for entry in cache._items.values())

    from recommender.api.item_cache import _frozen, _thawed

    explained = StoredItem(7, TFIDF, (Neighbour(8, 0.9, (Reason("tag", "python", 0.31),)), Neighbour(9, 0.8)), run_id, "t", None)
    assert _thawed(_frozen(explained)) == explained  # decoded reasons survive the round trip too


def test_one_request_checks_a_due_run_and_the_others_keep_the_cache_meanwhile(local_settings):
    """When ``RUN_CHECK_SECONDS`` has passed, one request reads the run's table; every request in
    flight used to read at once.  The check's read is held open (an event, no timing) while
    another user is asked; a failed check (the table dropped) sends every next request to the table."""
    import threading

    from recommender.store.dynamo import RunUnavailable

    settings = local_settings.model_copy(update={"pointer_cache_seconds": 0})
    run_id = "20260101T000004Z-dddddddd"
    publish(DynamoStore.for_generator(local_settings), run_id, run(run_id, 300))
    reader = DynamoStore.for_api(settings)
    reader.client = counting = CountingClient(reader.client)
    now = [0.0]
    cache = CachedItems(reader, 10, RunCheck(5, lambda: now[0]))
    for user in (1, 2, 3):
        assert cache.get(user, TFIDF).similar_users == [300]
    assert counting.item_reads == 3  # three misses; now all three are in memory

    reading, release = threading.Event(), threading.Event()
    plain_get_item = counting.get_item

    def held_get_item(**kwargs):
        if not kwargs["TableName"].endswith("-control"):
            reading.set()
            assert release.wait(30)
        return plain_get_item(**kwargs)

    counting.get_item = held_get_item
    now[0] = 6.0  # the check is due
    checker = threading.Thread(target=lambda: cache.get(1, TFIDF))
    checker.start()
    assert reading.wait(30)
    reads = counting.item_reads
    counting.get_item = plain_get_item
    assert cache.get(2, TFIDF).similar_users == [300] and cache.get(3, TFIDF).similar_users == [300]
    assert counting.item_reads == reads  # served from memory while the check is under way
    release.set()
    checker.join(30)
    assert not checker.is_alive()

    reader.client.client.delete_table(TableName=reader.run_table(run_id))
    now[0] = 12.0  # due again, and the table is gone
    for _ in range(2):
        with pytest.raises(RunUnavailable):
            cache.get(2, TFIDF)  # the first request's check fails; the next one reads again
    with pytest.raises(RunUnavailable):
        cache.get(3, TFIDF)
