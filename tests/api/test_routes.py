"""The HTTP contract, through Flask's test client, on the real DynamoDB Local."""

from __future__ import annotations

import time

import pytest

from recommender.api import create_app
from recommender.config import ApiSettings
from tests.api.conftest import MODELS, seed_for

pytestmark = pytest.mark.dynamodb



@pytest.fixture
def client(local_settings, seed_items):
    seed_items(seed_for((999,)))
    return create_app(local_settings).test_client()


def test_default_model_keeps_the_original_shape(client):
    response = client.post("/similar-users/", json={"user_handle": 999})
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["model_handle"] == "tfidf_user_interest"
    assert body[0]["similar_users"] == [901, 6871, 686, 2429, 3212, 4889, 8467, 4651, 8989, 2471]
    assert body[0]["user_handle"] == 999 and len(body[0]["scores"]) == 10


@pytest.mark.parametrize("model", MODELS)
def test_each_model_and_case_insensitive_handle_and_string_id(client, model):
    response = client.post("/similar-users/", json={"user_handle": "999", "model_handle": model.upper()})
    assert response.status_code == 200
    assert response.get_json()[0]["model_handle"] == model


def test_without_trailing_slash(client):
    assert client.post("/similar-users", json={"user_handle": 999}).status_code == 200


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({}, "user_handle: field required"),
        ({"user_handle": True}, "user_handle"),
        ({"user_handle": 1.5}, "user_handle"),
        ({"user_handle": 999.0}, "user_handle"),
        ({"user_handle": -4}, "user_handle: must be a positive integer"),
        ({"user_handle": 0}, "user_handle: must be a positive integer"),
        ({"user_handle": "12a"}, "user_handle"),
        ({"user_handle": ""}, "user_handle"),
        ({"user_handle": None}, "user_handle"),
        ({"user_handle": [999]}, "user_handle"),
        ({"user_handle": 10**30}, "user_handle"),
        ({"user_handle": 999, "model_handle": "svd"}, "tfidf_user_interest, knn_collab_filtering_user_course_view"),
        ({"user_handle": 999, "model_handle": 7}, "model_handle"),
    ],
)
def test_invalid_bodies_are_400_with_a_named_problem(client, body, fragment):
    response = client.post("/similar-users/", json=body)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["error"] == "invalid_request"
    assert fragment in payload["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b"42", b'"999"', b"null"])
def test_non_object_bodies_are_400(client, raw):
    response = client.post("/similar-users/", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] in {"invalid_json", "invalid_body"}


def test_unknown_user_is_404(client):
    response = client.post("/similar-users/", json={"user_handle": 123456})
    assert response.status_code == 404
    assert "123456" in response.get_json()["message"]


def test_wrong_method_is_405_json(client):
    response = client.get("/similar-users/")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_oversized_body_is_413_json(client):
    response = client.post("/similar-users/", data=b'{"user_handle": 1, "pad": "' + b"x" * 10_000 + b'"}', content_type="application/json")
    assert response.status_code == 413 and response.get_json()["error"] == "payload_too_large"


def test_unknown_path_is_404_json(client):
    assert client.get("/nope").get_json()["error"] == "not_found"


def test_health_ok(client):
    assert client.get("/health").status_code == 200


def test_database_down_is_503_quickly():
    settings = ApiSettings(dynamodb_endpoint_url="http://127.0.0.1:9", dynamodb_table="gone_table")
    client = create_app(settings).test_client()
    started = time.perf_counter()
    response = client.post("/similar-users/", json={"user_handle": 1})
    assert response.status_code == 503 and response.get_json()["error"] == "service_unavailable"
    assert client.get("/health").status_code == 503
    assert time.perf_counter() - started < 4  # two requests, each within the 2 s budget

