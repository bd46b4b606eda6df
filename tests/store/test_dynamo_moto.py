"""Store logic that needs no real server: conversions, table creation and the read path (moto)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from moto import mock_aws

from recommender.store.codec import from_dynamo, from_json_line, json_line, to_dynamo
from recommender.store.dynamo import DynamoStore, NoPublishedRun, StoreUnavailable
from recommender.store.items import Neighbour, Reason, StoredItem, build_items
from recommender.topk import Neighbours
from tests.conftest import local_settings_class, publish


def test_item_round_trips_through_dynamodb_attributes_and_records():
    item = StoredItem(7, "m", (Neighbour(1, 0.5, (Reason("tag", "python", 0.31),)), Neighbour(2, 1.0)), "r", "2026-01-01T00:00:00Z")
    attributes = to_dynamo(item)
    assert attributes["scores"] == {"S": "[0.5,1.0]"}  # lists as compact JSON strings (store/codec.py)
    assert attributes["similar_users"] == {"S": "[1,2]"}
    assert from_dynamo(attributes) == item
    assert from_json_line(json_line(item)) == item
    assert json.loads(json_line(item))["reasons"] == [[{"kind": "tag", "value": "python", "weight": 0.31}], []]
    assert "reasons" not in json.loads(json_line(StoredItem.of(7, "m", [(1, 0.5)])))  # no reasons, no attribute


def test_items_skip_users_without_neighbours():
    neighbours = Neighbours(
        users=np.array([1, 2, 3]),
        similar=np.array([[2, 3], [1, -1], [-1, -1]]),
        scores=np.array([[0.5, 0.25], [0.5, np.nan], [np.nan, np.nan]], dtype=np.float32),
    )
    items = list(build_items("tfidf_user_interest", neighbours, "run-1", "2026-01-01T00:00:00Z"))
    assert [(i.user_handle, i.similar_users, i.scores) for i in items] == [(1, [2, 3], [0.5, 0.25]), (2, [1], [0.5])]


@mock_aws
def test_tables_keys_billing_and_read_path():
    settings = local_settings_class()(dynamodb_table="moto_table", dynamodb_endpoint_url=None)
    store = DynamoStore.for_generator(settings)
    item = StoredItem.of(2, "tfidf_user_interest", [(1, 0.5)], run_id="20260101T000000Z-aaaaaaaa")
    publish(store, item.run_id, [item])
    desc = store.client.describe_table(TableName="moto_table-20260101T000000Z-aaaaaaaa")["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in desc["KeySchema"]} == {"user_handle": "HASH", "model_handle": "RANGE"}
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    reader = DynamoStore.for_api(settings)
    assert reader.get(2, "tfidf_user_interest") == item
    assert reader.get(3, "tfidf_user_interest") is None
    with pytest.raises(NoPublishedRun):  # no pointer for that model: not "no such user" (issue 11.10)
        reader.get(2, "knn_collab_filtering_user_course_view")


def test_unreachable_endpoint_is_store_unavailable():
    settings = local_settings_class()(dynamodb_endpoint_url="http://127.0.0.1:9", dynamodb_table="nothing_here", api_db_max_attempts=1)
    store = DynamoStore.for_api(settings)
    with pytest.raises(StoreUnavailable):
        store.get(1, "tfidf_user_interest")
    assert store.ping() is False
    with pytest.raises(StoreUnavailable):
        store.ensure_control_table()
