"""Store logic that does not need a real server: item conversion and table creation (moto)."""

from __future__ import annotations

import numpy as np
import pytest
from moto import mock_aws

from recommender.config import Settings
from recommender.store.dynamo import DynamoStore, StoreUnavailable
from recommender.store.items import build_items
from recommender.topk import Neighbours


@pytest.fixture
def store():
    with mock_aws():
        s = DynamoStore.for_generator(Settings(table_name="moto_table", dynamodb_endpoint_url=None))
        s.ensure_table()
        yield s


def test_table_keys_and_billing(store):
    desc = store.client.describe_table(TableName="moto_table")["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in desc["KeySchema"]} == {"user_handle": "HASH", "model_handle": "RANGE"}
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    store.ensure_table()  # idempotent


def test_items_round_trip_with_plain_types(store):
    neighbours = Neighbours(
        users=np.array([1, 2, 3]),
        similar=np.array([[2, 3], [1, -1], [-1, -1]]),
        scores=np.array([[0.5, 0.25], [0.5, np.nan], [np.nan, np.nan]], dtype=np.float32),
    )
    items = list(build_items("tfidf_user_interest", neighbours, "run-1", "2026-01-01T00:00:00Z"))
    assert [i["user_handle"] for i in items] == [1, 2]  # user 3 has no neighbour: no row
    assert store.write(items) == 2
    got = store.get(2, "tfidf_user_interest")
    assert got == {
        "user_handle": 2,
        "model_handle": "tfidf_user_interest",
        "similar_users": [1],
        "scores": [0.5],
        "generated_at": "2026-01-01T00:00:00Z",
        "run_id": "run-1",
    }
    assert store.get(3, "tfidf_user_interest") is None


def test_unreachable_endpoint_is_store_unavailable():
    settings = Settings(dynamodb_endpoint_url="http://127.0.0.1:9", table_name="nothing_here", api_max_attempts=1)
    store = DynamoStore.for_api(settings)
    with pytest.raises(StoreUnavailable):
        store.get(1, "tfidf_user_interest")
    assert store.ping() is False
    with pytest.raises(StoreUnavailable):
        store.ensure_table()
