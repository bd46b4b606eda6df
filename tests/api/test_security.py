"""API keys, JSON-only bodies, security headers, no debug mode, no internals in error bodies."""

from __future__ import annotations

import logging

import pytest

from recommender.api import create_app
from recommender.api.http.middleware import key_is_valid
from recommender.config import ApiSettings
from tests.api.conftest import MemoryStore

KEY = "s3cret-key-0123456789"
OTHER_KEY = "second-key-abcdefghij"
WRONG = "wrong-key-9876543210"


@pytest.fixture
def keyed(memory_app):
    return memory_app(api_keys=(KEY, OTHER_KEY)).test_client()


def test_without_key_is_401_json(keyed):
    response = keyed.post("/similar-users/", json={"user_handle": 999})
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized", "message": "a valid X-API-Key header is required"}


@pytest.mark.parametrize("key", [WRONG, "", KEY[:-1], KEY + "x", KEY.upper(), "é" * 5])
def test_wrong_key_is_401(keyed, key):
    response = keyed.post("/similar-users/", json={"user_handle": 999}, headers={"X-API-Key": key})
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"


@pytest.mark.parametrize("key", [KEY, OTHER_KEY])
def test_any_configured_key_opens_the_api(keyed, key):
    headers = {"X-API-Key": key}
    assert keyed.post("/similar-users/", json={"user_handle": 999}, headers=headers).status_code == 200
    assert keyed.get("/similar-users/999", headers=headers).status_code == 200
    assert keyed.get("/metrics", headers=headers).status_code == 200
    assert keyed.get("/openapi.json", headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["/similar-users/999", "/metrics"])
def test_every_endpoint_with_data_needs_the_key(keyed, path):
    assert keyed.get(path).status_code == 401


DOCS_PATHS = ["/docs", "/openapi.json", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"]


@pytest.mark.parametrize("path", DOCS_PATHS)
def test_docs_hold_no_data_and_stay_open_with_keys(keyed, path):
    assert keyed.get(path).status_code == 200


@pytest.mark.parametrize("path", DOCS_PATHS)
def test_docs_require_key_closes_them(memory_app, path):
    client = memory_app(api_keys=(KEY,), docs_require_key=True).test_client()
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"X-API-Key": KEY}).status_code == 200


def test_docs_assets_are_swagger_ui_files_and_nothing_else(memory_app):
    client = memory_app().test_client()
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and script.mimetype in ("text/javascript", "application/javascript")
    assert b"SwaggerUIBundle" in script.get_data()
    assert client.get("/docs/assets/swagger-ui.css").mimetype == "text/css"
    for name in ("LICENSE", "..%2f__init__.py", "index.css", "oauth2-redirect.html"):
        assert client.get(f"/docs/assets/{name}").status_code == 404


def test_routing_answers_before_the_key_check(keyed):
    """No route, no method: 404 and 405 as without keys (issue 11.12: POST /health was 401)."""
    assert keyed.get("/nope").status_code == 404
    response = keyed.post("/health")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"


def test_health_is_open(keyed):
    response = keyed.get("/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_no_keys_configured_means_open(memory_app):
    client = memory_app().test_client()
    assert client.post("/similar-users/", json={"user_handle": 999}).status_code == 200


def test_key_comparison_checks_every_key():
    assert key_is_valid(KEY, (KEY,)) and key_is_valid(OTHER_KEY, (KEY, OTHER_KEY))
    assert not key_is_valid(WRONG, (KEY, OTHER_KEY)) and not key_is_valid("", (KEY,))
    assert not key_is_valid("\udcff", (KEY,))  # undecodable header bytes: refused, no crash


def test_keys_never_reach_the_logs(memory_app, caplog, capsys):
    client = memory_app(api_keys=(KEY,), log_level="DEBUG").test_client()
    with caplog.at_level(logging.DEBUG):
        client.post("/similar-users/", json={"user_handle": 999}, headers={"X-API-Key": KEY})
        client.post("/similar-users/", json={"user_handle": 999}, headers={"X-API-Key": WRONG})
        client.get("/similar-users/abc", headers={"X-API-Key": KEY})
    logged = caplog.text + capsys.readouterr().err
    assert "POST /similar-users/ 200" in logged and "POST /similar-users/ 401" in logged  # the access lines are there
    assert KEY not in logged and WRONG not in logged
    for record in caplog.records:
        assert KEY not in repr(vars(record)) and WRONG not in repr(vars(record))


def test_settings_repr_hides_the_keys():
    assert KEY not in repr(ApiSettings(api_keys=(KEY,)))


def test_api_keys_setting_is_comma_separated(monkeypatch, tmp_path):
    from recommender.config import load_settings

    monkeypatch.setenv("API_KEYS", f" {KEY}, ,{OTHER_KEY} ")
    assert load_settings(ApiSettings, tmp_path / "none.env").api_keys == (KEY, OTHER_KEY)


@pytest.mark.parametrize(("value", "reason"), [
    (f'["{KEY}", "{OTHER_KEY}"]', "a comma-separated list, API_KEYS=key-one,key-two, not JSON"),
    (f"{KEY},cl\u00e9-{KEY}", "key 2 of 2 has a character other than printable ASCII"),
    (f"{KEY}\x01", "key 1 of 1 has a character other than printable ASCII"),
], ids=["json-list", "accented", "control-character"])
def test_api_keys_no_client_could_send_stop_the_start(monkeypatch, tmp_path, value, reason):
    """A JSON list would become keys with brackets and quotes, an accented key never matches a header
    (which arrives as latin-1 bytes): refused at start with one line that shows no key."""
    from recommender.config import SettingsError, load_settings

    monkeypatch.setenv("API_KEYS", value)
    with pytest.raises(SettingsError) as caught:
        load_settings(ApiSettings, tmp_path / "none.env")
    message = str(caught.value)
    assert message.startswith("setting API_KEYS=…: ") and reason in message, message
    assert KEY not in message and "\n" not in message


def test_an_accented_key_could_never_be_sent():
    """Why such keys are refused: the header's bytes, as a WSGI server hands them over, never equal it."""
    accented = "cl\u00e9"
    as_received = accented.encode("utf-8").decode("latin-1")  # PEP 3333: header values are latin-1 strings
    assert not key_is_valid(as_received, (accented,))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": '{"user_handle": 999}'},  # no content type at all
        {"data": '{"user_handle": 999}', "content_type": "text/plain"},
        {"data": "user_handle=999", "content_type": "application/x-www-form-urlencoded"},
    ],
)
def test_post_without_json_content_type_is_415(memory_app, kwargs):
    response = memory_app().test_client().post("/similar-users/", **kwargs)
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"


def test_json_content_type_with_charset_is_accepted(memory_app):
    response = memory_app().test_client().post(
        "/similar-users/", data='{"user_handle": 999}', content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 200


API_PATHS = ["/similar-users/999", "/health", "/metrics", "/openapi.json", "/nope"]


@pytest.mark.parametrize("path", API_PATHS)
def test_security_headers_on_every_answer(memory_app, path):
    response = memory_app().test_client().get(path)
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp


def test_security_headers_on_errors_too(memory_app):
    client = memory_app().test_client()
    for response in (client.post("/similar-users/", json={"user_handle": "x"}), client.delete("/similar-users/")):
        assert response.status_code in (400, 405)
        assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"


def test_docs_page_and_its_csp_name_this_origin_only(memory_app):
    response = memory_app().test_client().get("/docs")
    csp = response.headers["Content-Security-Policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    page = response.get_data(as_text=True)
    assert f'<script nonce="{nonce}">' in page  # the inline script runs ...
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]  # ... and no other inline script
    assert "script-src 'self' 'nonce-" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in csp and "https://" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert '<script src="/docs/assets/swagger-ui-bundle.js">' in page
    assert response.headers["X-Frame-Options"] == "DENY"
    other = memory_app().test_client().get("/docs").headers["Content-Security-Policy"]
    assert other != csp  # a fresh nonce per page


class ExplodingStore(MemoryStore):
    def get(self, user_handle, model_handle):
        raise RuntimeError("boto internals: table similar_users_secret at /srv/app/recommender/store/dynamo.py")


def test_unexpected_error_is_a_plain_500_without_trace(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")  # must not switch the debugger on
    app = create_app(ApiSettings(), store=ExplodingStore())
    assert app.debug is False
    response = app.test_client().post("/similar-users/", json={"user_handle": 999})
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal_error", "message": "internal server error"}
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "boto" not in body and "dynamo" not in body


@pytest.mark.parametrize("body", [{"user_handle": "x"}, {"user_handle": 1, "model_handle": "nope"}, {"k": 1}])
def test_validation_errors_name_no_internals(memory_app, body):
    payload = memory_app().test_client().post("/similar-users/", json=body).get_json()
    assert set(payload) == {"error", "message"}
    text = payload["message"].lower()
    assert not any(word in text for word in ("pydantic", "spectree", "traceback", "errors.pydantic.dev", "valueerror"))
