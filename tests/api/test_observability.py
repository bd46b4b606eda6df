"""Prometheus metrics, request ids and the one-line-per-request log (text and JSON)."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from recommender.api import create_app
from recommender.config import ApiSettings


def scrape(client, headers=None) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_counter_counts_by_endpoint_status_and_model(memory_app):
    client = memory_app().test_client()
    before = scrape(client)
    for _ in range(3):
        assert client.post("/similar-users/", json={"user_handle": 999, "model_handle": "KNN_collab_filtering_user_course_view"}).status_code == 200
    assert client.get("/similar-users/999?model_handle=dnn_collab_filtering_user_course_level").status_code == 200
    assert client.post("/similar-users/", json={"user_handle": 424242}).status_code == 404
    assert client.post("/similar-users/", json={"user_handle": "bad"}).status_code == 400
    after = scrape(client)
    name = "similar_users_http_requests_total"
    post = {"endpoint": "/similar-users/", "method": "POST"}

    def delta(**labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(**post, status="200", model_handle="knn_collab_filtering_user_course_view") == 3
    assert delta(endpoint="/similar-users/<user_handle>", method="GET", status="200", model_handle="dnn_collab_filtering_user_course_level") == 1
    assert delta(**post, status="404", model_handle="tfidf_user_interest") == 1
    assert delta(**post, status="400", model_handle="none") == 1


def test_latency_histogram_observes_each_request(memory_app):
    client = memory_app().test_client()
    labels = {"endpoint": "/health", "method": "GET"}
    before = scrape(client)
    for _ in range(4):
        client.get("/health")
    after = scrape(client)
    count = "similar_users_http_request_duration_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == 4
    buckets = [k for k in after if k[0] == "similar_users_http_request_duration_seconds_bucket" and ("endpoint", "/health") in k[1]]
    assert len(buckets) >= 10  # a real histogram, with buckets


def test_older_garbage_collections_are_timed_once_each(memory_app):
    """Oracle: the collections asked for by hand (``gc.collect``), and a second app in the same
    process does not time each collection twice."""
    import gc

    client = memory_app().test_client()
    memory_app()
    count = "similar_users_gc_pause_seconds_count"
    before = scrape(client)
    gc.collect(1)
    gc.collect(2)
    gc.collect(2)
    after = scrape(client)
    assert value(after, count, generation="2") - value(before, count, generation="2") >= 2  # or one more on its own
    assert value(after, count, generation="1") - value(before, count, generation="1") >= 1
    assert sum(getattr(callback, "_similar_users", False) for callback in gc.callbacks) == 1
    assert value(after, "similar_users_gc_pause_seconds_sum", generation="2") > value(before, "similar_users_gc_pause_seconds_sum", generation="2")


def test_unknown_paths_share_one_label(memory_app):
    client = memory_app().test_client()
    before = scrape(client)
    for i in range(3):
        client.get(f"/random-{i}")
    after = scrape(client)
    labels = {"endpoint": "unmatched", "method": "GET", "status": "404", "model_handle": "none"}
    assert value(after, "similar_users_http_requests_total", **labels) - value(before, "similar_users_http_requests_total", **labels) == 3
    assert not any("random" in str(key) for key in after)


def test_database_errors_are_counted():
    client = create_app(ApiSettings(dynamodb_endpoint_url="http://127.0.0.1:9", dynamodb_table="gone_table")).test_client()
    before = scrape(client)
    assert client.post("/similar-users/", json={"user_handle": 1}).status_code == 503
    assert client.get("/health").status_code == 503
    after = scrape(client)
    name = "similar_users_store_errors_total"
    assert value(after, name, operation="get") - value(before, name, operation="get") == 1
    assert value(after, name, operation="ping") - value(before, name, operation="ping") == 1
    labels = {"endpoint": "/similar-users/", "method": "POST", "status": "503", "model_handle": "tfidf_user_interest"}
    assert value(after, "similar_users_http_requests_total", **labels) - value(before, "similar_users_http_requests_total", **labels) == 1


def test_request_id_is_echoed(memory_app):
    client = memory_app().test_client()
    response = client.post("/similar-users/", json={"user_handle": 999}, headers={"X-Request-ID": "abc-123.x:y_z"})
    assert response.headers["X-Request-ID"] == "abc-123.x:y_z"
    assert client.get("/nope", headers={"X-Request-ID": "err-1"}).headers["X-Request-ID"] == "err-1"


def test_request_id_is_generated_when_absent(memory_app):
    client = memory_app().test_client()
    first = client.get("/health").headers["X-Request-ID"]
    second = client.get("/health").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


@pytest.mark.parametrize("bad", ["x" * 65, "has space", "new\\nline", "<script>", "é", "a;b"])
def test_unsafe_request_ids_are_replaced(memory_app, bad):
    rid = memory_app().test_client().get("/health", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
    assert rid != bad and re.fullmatch(r"[0-9a-f]{32}", rid)


def test_one_text_log_line_per_request(memory_app, capsys):
    client = memory_app().test_client()
    capsys.readouterr()
    client.post("/similar-users/", json={"user_handle": 999, "model_handle": "dnn_collab_filtering_user_course_level"},
                headers={"X-Request-ID": "text-log-1"})
    lines = [line for line in capsys.readouterr().err.splitlines() if "recommender.api.access" in line]
    assert len(lines) == 1
    line = lines[0]
    assert "[text-log-1]" in line and "POST /similar-users/ 200" in line and "model_handle=dnn_collab_filtering_user_course_level" in line
    assert re.search(r" \d+\.\d{2}ms ", line)


def test_json_log_lines(memory_app, capsys):
    client = memory_app(log_format="json").test_client()
    capsys.readouterr()
    client.get("/similar-users/999?model_handle=knn_collab_filtering_user_course_view&k=2", headers={"X-Request-ID": "json-log-1"})
    client.get("/nope")
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    access = [r for r in records if r.get("logger") == "recommender.api.access"]
    assert len(access) == 2
    first = access[0]
    assert first["method"] == "GET" and first["path"] == "/similar-users/999" and first["status"] == 200
    assert first["model_handle"] == "knn_collab_filtering_user_course_view" and first["request_id"] == "json-log-1"
    assert isinstance(first["duration_ms"], float) and first["level"] == "INFO" and "asctime" in first
    assert access[1]["status"] == 404 and len(access[1]["request_id"]) == 32
    assert "k=2" not in json.dumps(access)  # the query string is not logged


def test_log_format_setting(monkeypatch, tmp_path):
    from recommender.config import load_settings

    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert load_settings(ApiSettings, tmp_path / "none.env").log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        load_settings(ApiSettings, tmp_path / "none.env")


def test_control_characters_in_paths_cannot_forge_log_lines(memory_app, capsys):
    client = memory_app().test_client()
    capsys.readouterr()
    client.get("/x%0A2026-01-01 INFO forged")
    lines = [line for line in capsys.readouterr().err.splitlines() if "recommender.api.access" in line or "forged" in line]
    assert len(lines) == 1 and "\\x0a" in lines[0]
