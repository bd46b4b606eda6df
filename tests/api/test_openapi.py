"""The generated OpenAPI 3 document, the docs page, the GET convenience and ``k``.

The routes tests run on the real DynamoDB Local, seeded through ``seed_items``."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from recommender.api import create_app
from tests.api.conftest import MODELS, NEIGHBOURS


@pytest.fixture
def spec(memory_app) -> dict:
    response = memory_app().test_client().get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_document_is_valid_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    validate(spec)  # raises on any violation of the OpenAPI 3 schema


def test_every_endpoint_is_described(spec, memory_app):
    app = memory_app()
    rules = {rule.rule.replace("<user_handle>", "{user_handle}") for rule in app.url_map.iter_rules()}
    # The docs page's own files and the explorer's pages (HTML for people, docs/explorer.md): not an API.
    assert rules - set(spec["paths"]) == {"/docs/assets/<name>", "/explore", "/explore/panel", "/explore/experiments",
                                          "/explore/experiments/panel", "/explore/static/<path:filename>"}
    assert set(spec["paths"]) == {"/similar-users/", "/similar-users/{user_handle}", "/models", "/health", "/metrics", "/openapi.json",
                                  "/docs", "/feedback"}


def test_responses_are_documented(spec):
    post = spec["paths"]["/similar-users/"]["post"]
    assert {"200", "400", "401", "404", "413", "415", "503"} <= set(post["responses"])
    get = spec["paths"]["/similar-users/{user_handle}"]["get"]
    assert {"200", "400", "401", "404", "503"} <= set(get["responses"])
    assert set(spec["paths"]["/health"]["get"]["responses"]) == {"200", "503"}
    assert {"202", "400", "401", "404", "413", "415", "503"} <= set(spec["paths"]["/feedback"]["post"]["responses"])
    answer = spec["components"]["schemas"]["SimilarUsersAnswer"]["properties"]
    assert {"experiment", "variant", "request_id"} <= set(answer)  # the A/B fields are documented
    error_ref = post["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    error_schema = spec["components"]["schemas"][error_ref.rsplit("/", 1)[1]]
    assert set(error_schema["required"]) == {"error", "message"}


def test_request_schema_is_the_pydantic_model(spec):
    ref = spec["paths"]["/similar-users/"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert body["required"] == ["user_handle"]
    kinds = {alt["type"] for alt in body["properties"]["user_handle"]["anyOf"]}
    assert kinds == {"integer", "string"}
    assert body["properties"]["model_handle"]["anyOf"][0]["enum"] == list(MODELS)
    assert body["properties"]["k"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 100}
    params = {p["name"]: p for p in spec["paths"]["/similar-users/{user_handle}"]["get"]["parameters"]}
    assert params["user_handle"]["in"] == "path" and "pattern" in params["user_handle"]["schema"]
    assert params["k"]["in"] == "query" and params["k"]["schema"]["maximum"] == 100


def test_answer_schema_is_a_list_of_one_object(spec):
    ref = spec["paths"]["/similar-users/"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    answer_list = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert answer_list["type"] == "array"
    item = spec["components"]["schemas"][answer_list["items"]["$ref"].rsplit("/", 1)[1]]
    assert {"model_handle", "similar_users", "user_handle", "scores", "generated_at"} <= set(item["properties"])


def test_security_scheme_only_when_keys_are_configured(spec, memory_app):
    assert "security" not in spec and "securitySchemes" not in spec["components"]
    keyed = memory_app(api_keys=("k1",)).test_client().get("/openapi.json", headers={"X-API-Key": "k1"}).get_json()
    validate(keyed)
    assert keyed["components"]["securitySchemes"]["ApiKeyAuth"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert keyed["security"] == [{"ApiKeyAuth": []}]
    assert keyed["paths"]["/health"]["get"]["security"] == []  # the probe stays open
    assert keyed["paths"]["/docs"]["get"]["security"] == keyed["paths"]["/openapi.json"]["get"]["security"] == []
    assert "security" not in keyed["paths"]["/similar-users/"]["post"]  # the document-wide key applies
    closed = memory_app(api_keys=("k",), docs_require_key=True).test_client().get("/openapi.json", headers={"X-API-Key": "k"}).get_json()
    assert "security" not in closed["paths"]["/docs"]["get"]


def test_docs_page(memory_app):
    response = memory_app().test_client().get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "swagger-ui" in page.lower() and "/openapi.json" in page


# --- the routes, on DynamoDB Local -----------------------------------------------------------


@pytest.fixture
def client(seeded_settings):
    return create_app(seeded_settings).test_client()


@pytest.mark.dynamodb
@pytest.mark.parametrize("model", MODELS)
def test_get_convenience_matches_the_post(client, model):
    got = client.get(f"/similar-users/999?model_handle={model.upper()}")
    posted = client.post("/similar-users/", json={"user_handle": 999, "model_handle": model})
    assert got.status_code == 200 and got.get_json() == posted.get_json()
    body = got.get_json()
    assert isinstance(body, list) and len(body) == 1 and body[0]["model_handle"] == model
    assert body[0]["similar_users"] == NEIGHBOURS


@pytest.mark.dynamodb
def test_get_default_model_and_errors(client):
    assert client.get("/similar-users/999").get_json()[0]["model_handle"] == "tfidf_user_interest"
    assert client.get("/similar-users/0999").status_code == 400  # one canonical spelling (test_user_handles.py)
    missing = client.get("/similar-users/123456")
    assert missing.status_code == 404 and "123456" in missing.get_json()["message"]
    for bad in ("abc", "-5", "0", "1.5", "9" * 30):
        response = client.get(f"/similar-users/{bad}")
        assert response.status_code == 400, bad
        assert response.get_json()["error"] == "invalid_request" and "user_handle" in response.get_json()["message"]
    unknown = client.get("/similar-users/999?model_handle=svd")
    assert unknown.status_code == 400 and "tfidf_user_interest" in unknown.get_json()["message"]


@pytest.mark.dynamodb
@pytest.mark.parametrize("k", [1, 3, 10, 100])
def test_k_returns_fewer_neighbours(client, k):
    for response in (
        client.post("/similar-users/", json={"user_handle": 999, "k": k}),
        client.get(f"/similar-users/999?k={k}"),
    ):
        assert response.status_code == 200
        answer = response.get_json()[0]
        assert answer["similar_users"] == NEIGHBOURS[:k] and len(answer["scores"]) == min(k, 10)


@pytest.mark.dynamodb
@pytest.mark.parametrize("k", [0, -1, 101, 2.5, 3.0, "3", True, "x", [3]])
def test_bad_k_in_the_body_is_400(client, k):
    response = client.post("/similar-users/", json={"user_handle": 999, "k": k})
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_request", "message": "k: must be an integer from 1 to 100"}


@pytest.mark.dynamodb
@pytest.mark.parametrize("k", ["0", "-1", "101", "2.5", "3.0", "+3", "x", "", "1e1"])
def test_bad_k_in_the_query_is_400(client, k):
    response = client.get(f"/similar-users/999?k={k}")
    assert response.status_code == 400
    assert response.get_json()["message"] == "k: must be an integer from 1 to 100"


@pytest.mark.dynamodb
def test_get_wrong_method_is_405(client):
    response = client.post("/similar-users/999", json={"user_handle": 999})
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


def test_answers_are_checked_against_their_schema_only_when_asked():
    """VALIDATE_RESPONSES (on in the tests) turns an answer that breaks its published schema into a
    plain 500; production leaves the check off, since it re-parses every answer we just built."""
    from recommender.config import ApiSettings
    from recommender.store.items import Neighbour, Reason, StoredItem
    from tests.api.conftest import MemoryStore

    odd = Neighbour(5, 0.5, (Reason("mood", "happy", 0.1),))  # a kind the schema does not publish
    item = StoredItem(999, MODELS[0], (odd,), "r1", "2026-11-28T00:00:00Z")
    body = {"user_handle": 999, "explain": True}
    checked = create_app(ApiSettings(validate_responses=True), store=MemoryStore([item])).test_client()
    assert checked.post("/similar-users/", json=body).status_code == 500
    unchecked = create_app(ApiSettings(validate_responses=False), store=MemoryStore([item])).test_client()
    answer = unchecked.post("/similar-users/", json=body)
    assert answer.status_code == 200 and answer.get_json()[0]["neighbours"][0]["reasons"][0]["kind"] == "mood"
