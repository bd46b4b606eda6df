"""``explain``: the answer with reasons, on the real DynamoDB Local; without it, the specification's shape."""

from __future__ import annotations

import pytest

from recommender.api import create_app
from recommender.store.items import Neighbour, Reason, StoredItem

pytestmark = pytest.mark.dynamodb

SPEC_KEYS = {"model_handle", "similar_users", "user_handle", "scores", "generated_at"}


@pytest.fixture
def client(local_settings, seed_items):
    neighbours = (
        Neighbour(5, 0.61, (Reason("tag", "elixir", 0.4), Reason("tag", "javascript", 0.2))),
        Neighbour(6, 0.3, (Reason("tag", "javascript", 0.3),)),
        Neighbour(7, 0.1),
    )
    seed_items([StoredItem(999, "tfidf_user_interest", neighbours, "r", "2026-01-01T00:00:00Z"),
                StoredItem.of(999, "ensemble_user_similarity", [(5, 0.9)])])
    return create_app(local_settings).test_client()


@pytest.mark.parametrize("ask", [
    lambda c: c.post("/similar-users/", json={"user_handle": 999, "explain": True}),
    lambda c: c.get("/similar-users/999?explain=true"),
])
def test_explain_adds_neighbours_with_reasons(client, ask):
    body = ask(client).get_json()[0]
    assert set(body) == SPEC_KEYS | {"neighbours"}
    assert [n["user_handle"] for n in body["neighbours"]] == body["similar_users"] == [5, 6, 7]
    assert [n["score"] for n in body["neighbours"]] == body["scores"]
    first = body["neighbours"][0]["reasons"]
    assert first == [
        {"kind": "tag", "value": "elixir", "weight": 0.4, "text": "both follow elixir"},
        {"kind": "tag", "value": "javascript", "weight": 0.2, "text": "both follow javascript"},
    ]
    assert body["neighbours"][2]["reasons"] == []


def test_without_explain_the_answer_keeps_the_specification_shape(client):
    for response in (client.post("/similar-users/", json={"user_handle": 999}),
                     client.post("/similar-users/", json={"user_handle": 999, "explain": False}),
                     client.get("/similar-users/999?explain=false")):
        assert set(response.get_json()[0]) == SPEC_KEYS


def test_k_cuts_both_lists(client):
    body = client.post("/similar-users/", json={"user_handle": 999, "explain": True, "k": 1}).get_json()[0]
    assert body["similar_users"] == [5] and [n["user_handle"] for n in body["neighbours"]] == [5]
    body = client.get("/similar-users/999?explain=true&k=2&model_handle=ensemble_user_similarity").get_json()[0]
    assert body["neighbours"] == [{"user_handle": 5, "score": 0.9, "reasons": []}]


@pytest.mark.parametrize("ask", [
    lambda c: c.post("/similar-users/", json={"user_handle": 999, "explain": "true"}),
    lambda c: c.post("/similar-users/", json={"user_handle": 999, "explain": 1}),
    lambda c: c.get("/similar-users/999?explain=1"),
])
def test_explain_must_be_a_boolean(client, ask):
    response = ask(client)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_request", "message": "explain: must be true or false"}
