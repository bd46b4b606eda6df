"""The store against the real DynamoDB Local jar."""

from __future__ import annotations

import pytest

from recommender.store.dynamo import DynamoStore

pytestmark = pytest.mark.dynamodb


def item(user: int, model: str = "knn_collab_filtering_user_course_view", run: str = "r1") -> dict:
    return {
        "user_handle": user,
        "model_handle": model,
        "similar_users": [user + 1, user + 2],
        "scores": [0.9, 0.123456],
        "generated_at": "2026-11-28T00:00:00Z",
        "run_id": run,
    }


def test_batched_write_and_read_back(local_settings):
    store = DynamoStore.for_generator(local_settings)
    store.ensure_table()
    store.ensure_table()
    # 260 items: more than ten 25-item batches, two models per user.
    items = [item(u) for u in range(1, 131)] + [item(u, "tfidf_user_interest") for u in range(1, 131)]
    assert store.write(items) == 260
    reader = DynamoStore.for_api(local_settings)
    assert reader.ping()
    assert reader.get(77, "knn_collab_filtering_user_course_view") == item(77)
    assert reader.get(77, "tfidf_user_interest")["model_handle"] == "tfidf_user_interest"
    assert reader.get(999, "tfidf_user_interest") is None
    count = store.client.scan(TableName=local_settings.table_name, Select="COUNT")["Count"]
    assert count == 260


def test_rewrite_replaces_the_item(local_settings):
    store = DynamoStore.for_generator(local_settings)
    store.ensure_table()
    store.write([item(5, run="old")])
    store.write([item(5, run="new")])
    assert store.get(5, "knn_collab_filtering_user_course_view")["run_id"] == "new"


def test_missing_table_is_not_healthy(local_settings):
    assert DynamoStore.for_api(local_settings).ping() is False
