"""``GET /models`` on the real DynamoDB Local: the registry joined with what is published."""

from __future__ import annotations

import re

import pytest

from recommender.api import create_app
from recommender.models.registry import MODEL_HANDLES, MODELS
from recommender.store.items import StoredItem

pytestmark = pytest.mark.dynamodb

RUN_ID = "20260102T030405Z-models00"


@pytest.fixture
def client(local_settings, seed_items):
    published = MODEL_HANDLES[:2]
    items = [StoredItem.of(user, model, [(user + 1, 0.5)]) for model in published for user in (1, 2, 3)]
    items.append(StoredItem.of(9, published[1], [(1, 0.2)]))
    seed_items(items, run_id=RUN_ID)
    return create_app(local_settings).test_client()


def test_every_registered_model_with_its_description_run_and_coverage(client):
    response = client.get("/models")
    assert response.status_code == 200
    models = response.get_json()["models"]
    assert [m["model_handle"] for m in models] == list(MODEL_HANDLES)
    assert [m["description"] for m in models] == [spec.description for spec in MODELS]
    assert [m["default"] for m in models] == [h == "tfidf_user_interest" for h in MODEL_HANDLES]
    first, second, *unpublished = models
    assert (first["published"], first["run_id"], first["users_covered"]) == (True, RUN_ID, 3)
    assert (second["published"], second["users_covered"]) == (True, 4)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["published_at"])
    assert unpublished and all(not m["published"] and m["run_id"] is None for m in unpublished)


def test_unknown_model_handle_lists_the_same_handles(client):
    listed = [m["model_handle"] for m in client.get("/models").get_json()["models"]]
    message = client.post("/similar-users/", json={"user_handle": 1, "model_handle": "nope"}).get_json()["message"]
    assert message.endswith("valid: " + ", ".join(listed))


def test_database_down_is_503(local_settings):
    settings = local_settings.model_copy(update={"dynamodb_endpoint_url": "http://127.0.0.1:9"})
    response = create_app(settings).test_client().get("/models")
    assert response.status_code == 503 and response.get_json()["error"] == "service_unavailable"
