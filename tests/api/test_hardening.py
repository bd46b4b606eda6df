"""Hostile clients and a wiped database, against the API as deployed: gunicorn (the settings of
``make serve``) on a loopback port, DynamoDB Local behind it, raw sockets where a well-behaved
HTTP client could not send the request (issue 11, API items 6 to 12)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from recommender.store.dynamo import DynamoStore
from recommender.store.items import StoredItem
from tests.api.conftest import MODELS, NEIGHBOURS, SCORES, seed_for
from tests.conftest import local_settings_class, publish
from tests.live import GUNICORN, gunicorn_server

pytestmark = [pytest.mark.dynamodb]

GUNICORNC = GUNICORN.parent / "gunicornc"

# Issue 11.6: with 64 slow clients connected, /health and real requests answer within 1 s.
SLOW_CLIENTS = 64
REQUIRED_SECONDS = 1.0
SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Cache-Control",
                    "Cross-Origin-Resource-Policy", "Content-Security-Policy")


def address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def raw_request(base: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is; the status, headers (names lower-cased) and body of the answer."""
    with socket.create_connection(address(base), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            head, sep, body = received.partition(b"\r\n\r\n")
            if sep:
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if length and len(body) >= int(length.group(1)):
                    break
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture(scope="module")
def served(dynamodb_endpoint, tmp_path_factory):
    """(base URL, server log) of one gunicorn on a seeded table, for the tests that change nothing."""
    settings = local_settings_class()(dynamodb_endpoint_url=dynamodb_endpoint, dynamodb_table=f"test_{uuid.uuid4().hex[:12]}")
    publish(DynamoStore.for_generator(settings), "20260101T000000Z-seed0000", seed_for((999, 1)))
    log = tmp_path_factory.mktemp("hardening") / "gunicorn.log"
    with gunicorn_server(settings, log) as base:
        yield base, log


# -- 6: slow clients ----------------------------------------------------------------------------

def test_health_and_answers_while_64_slow_clients_hold_connections(served):
    base, _ = served
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection(address(base), timeout=10)
            # The headers and the start of a body that never comes: what a worker thread waited on.
            sock.sendall(b"POST /similar-users/ HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"user_handle\": ")
            slow.append(sock)
        time.sleep(0.5)  # let the server accept them all and start reading their bodies
        with requests.Session() as session:
            for model in MODELS:
                health = session.get(f"{base}/health", timeout=REQUIRED_SECONDS)
                assert health.status_code == 200
                answer = session.post(f"{base}/similar-users/", json={"user_handle": 999, "model_handle": model},
                                      timeout=REQUIRED_SECONDS)
                assert answer.status_code == 200 and answer.json()[0]["similar_users"] == NEIGHBOURS
        # New connections too, not only the kept-alive one.
        for _ in range(3):
            assert requests.get(f"{base}/health", timeout=REQUIRED_SECONDS).status_code == 200
    finally:
        for sock in slow:
            sock.close()


def test_a_client_that_stalls_its_body_is_dropped(served):
    """Slow clients cost a greenlet, and not for ever: silence past CLIENT_SILENCE_SECONDS ends them."""
    base, _ = served
    silence = 10.0  # CLIENT_SILENCE_SECONDS in recommender/api/http/gunicorn_worker.py
    with socket.create_connection(address(base), timeout=silence + 10) as sock:
        sock.sendall(b"POST /similar-users/ HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"user_handle\": ")
        answer = sock.recv(65536)  # socket.timeout (a failure) if the server waited on
    # Closed without a word, or told: the body did not arrive (never a 200, never a 5xx).
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]


# -- 7: deep JSON -------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "[" * 1900 + "]" * 1900,
    '{"user_handle": ' + "[" * 1900 + "]" * 1900 + "}",
], ids=["array", "inside-object"])
def test_deeply_nested_json_within_the_size_limit_is_400(served, body):
    base, log = served
    assert len(body) <= 4096  # within MAX_BODY_BYTES: the size limit does not catch it
    response = requests.post(f"{base}/similar-users/", data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_json" and "nested" in response.json()["message"]
    assert "Traceback" not in log.read_text() and "RecursionError" not in log.read_text()


# -- 8: chunked bodies --------------------------------------------------------------------------

def chunked(data: bytes, size: int = 1000):
    """A generator body: requests sends it with Transfer-Encoding: chunked and no Content-Length."""
    return (data[i:i + size] for i in range(0, len(data), size))


def test_chunked_body_over_max_body_bytes_is_413(served):
    base, _ = served
    big = json.dumps({"user_handle": 999, "padding": "x" * 6000}).encode()  # > 4096, valid JSON
    response = requests.post(f"{base}/similar-users/", data=chunked(big), headers={"Content-Type": "application/json"}, timeout=10)
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "payload_too_large"


def test_chunked_body_within_the_limit_is_answered(served):
    base, _ = served
    body = json.dumps({"user_handle": 999, "k": 3, "padding": "x" * 3000}).encode()  # > 1 chunk, < 4096
    response = requests.post(f"{base}/similar-users/", data=chunked(body), headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()[0]["similar_users"] == NEIGHBOURS[:3]


# -- 9: gunicorn's own errors, redirects ----------------------------------------------------------

@pytest.mark.parametrize(("request_bytes", "status", "error"), [
    (b"GET /similar-users/" + b"9" * 5000 + b" HTTP/1.1\r\nHost: api\r\n\r\n", 414, "uri_too_long"),
    (b"GET /health HTTP/1.1\r\nHost: api\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "request_header_fields_too_large"),
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET /health HTTP/1.1\r\nHost: api\r\nBad Header\x01: x\r\n\r\n", 400, "bad_request"),
    (b"POST /similar-users/ HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ZZ\r\n{}\r\n0\r\n\r\n", 400, "bad_request"),
], ids=["uri-too-long", "header-too-large", "malformed-request-line", "malformed-header", "malformed-chunk"])
def test_errors_raised_by_gunicorn_are_json_with_the_security_headers(served, request_bytes, status, error):
    base, _ = served
    reference = requests.get(f"{base}/health", timeout=10).headers  # what the app puts on every answer
    got, headers, body = raw_request(base, request_bytes)
    assert got == status, body
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["error"] == error and payload["message"]
    for name in SECURITY_HEADERS:
        assert headers.get(name.lower()) == reference[name], name
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])


@pytest.mark.parametrize("path", ["//health", "//similar-users/999", "/similar-users//999", "//", "//evil.example/health"])
def test_no_redirect_is_built_from_the_host_header(served, path):
    base, _ = served
    request = f"GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".encode()
    status, headers, body = raw_request(base, request)
    assert not 300 <= status < 400 and "location" not in headers, (status, headers)
    assert headers["content-type"] == "application/json" and json.loads(body)  # an answer or a JSON error


# -- 10: a wiped database ---------------------------------------------------------------------------

def test_missing_pointer_is_503_no_published_run_not_404(seeded_settings, tmp_path):
    # See the wipe at once: no pointer cache, and /health looks at the database on every probe
    # (its refresh in the background is test_run_unavailable.py's business).
    env = {"POINTER_CACHE_SECONDS": "0", "RUN_CHECK_SECONDS": "0"}
    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log", env=env) as base:
        url = f"{base}/similar-users/"
        assert requests.post(url, json={"user_handle": 999}, timeout=10).status_code == 200
        assert requests.post(url, json={"user_handle": 424242}, timeout=10).status_code == 404  # unknown user
        # DynamoDB Local restarted empty: every table of this prefix is gone.
        store = DynamoStore.for_generator(seeded_settings)
        for page in store.client.get_paginator("list_tables").paginate():
            for name in page["TableNames"]:
                if name.startswith(f"{seeded_settings.dynamodb_table}-"):
                    store.drop_table(name)
        for user in (999, 424242):
            response = requests.post(url, json={"user_handle": user}, timeout=10)
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "no_published_run"
            assert "tfidf_user_interest" in response.json()["message"]
        assert requests.get(f"{base}/health", timeout=10).status_code == 503
        # The control table back, but this model never published: still 503, still not 404.
        store.ensure_control_table()
        response = requests.get(f"{base}/similar-users/999", timeout=10)
        assert response.status_code == 503 and response.json()["error"] == "no_published_run"
        assert requests.get(f"{base}/health", timeout=10).status_code == 200


# -- 11: workers agree after a publish ----------------------------------------------------------

def requests_by_worker(prometheus_dir: Path) -> dict[str, float]:
    """Requests counted so far by each worker process (pid → count), from its own metrics file."""
    from prometheus_client.mmap_dict import MmapedDict

    counts = {}
    for path in prometheus_dir.glob("counter_*.db"):
        values = MmapedDict(str(path), read_mode=True)
        try:
            counts[path.stem.rsplit("_", 1)[1]] = sum(
                value for key, value, *_ in values.read_all_values() if "similar_users_http_requests_total" in key)
        finally:
            values.close()
    return counts


def sessions_on_two_workers(base: str, prometheus_dir: Path) -> list[requests.Session]:
    """Two kept-alive connections served by two different workers (found by their metrics)."""
    by_worker: dict[str, requests.Session] = {}
    # Whichever worker wakes first accepts: on a busy machine one of them can win dozens in a row.
    for _ in range(300):
        session = requests.Session()
        before = requests_by_worker(prometheus_dir)
        assert session.get(f"{base}/metrics", timeout=10).status_code == 200
        after = requests_by_worker(prometheus_dir)
        worker = next(pid for pid, count in after.items() if count > before.get(pid, 0))
        if worker in by_worker:
            session.close()
        else:
            by_worker[worker] = session
        if len(by_worker) == 2:
            return list(by_worker.values())
    raise AssertionError("300 connections all went to one worker")


def generated_at(session: requests.Session, base: str) -> str:
    response = session.post(f"{base}/similar-users/", json={"user_handle": 999}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()[0]["generated_at"]


def test_after_a_publish_no_worker_goes_back_to_the_old_run(seeded_settings, tmp_path):
    cache = 6.0
    prometheus_dir = tmp_path / "prometheus"
    env = {"POINTER_CACHE_SECONDS": str(cache), "PROMETHEUS_MULTIPROC_DIR": str(prometheus_dir),
           "GUNICORN_CMD_ARGS": "--keep-alive 30"}  # the connections stay on their worker
    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log", workers=2, env=env) as base:
        first, second = sessions_on_two_workers(base, prometheus_dir)
        old = generated_at(first, base)  # the first worker reads the pointer (the old run) now...
        time.sleep(cache / 2)
        assert generated_at(second, base) == old  # ...the second one half a cache period later
        new_item = StoredItem.of(999, MODELS[0], zip(NEIGHBOURS, SCORES), run_id="r2", generated_at="2026-11-29T00:00:00Z")
        publish(DynamoStore.for_generator(seeded_settings), "20260102T000000Z-seed0001", [new_item])
        # The first worker's cache runs out first: poll it until it serves the new run.
        deadline = time.monotonic() + cache + 5
        while (seen := generated_at(first, base)) == old and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seen == "2026-11-29T00:00:00Z"
        # A client that saw the new run never gets the old one again, whichever worker answers.
        for _ in range(5):
            assert generated_at(second, base) == seen
            assert generated_at(first, base) == seen
        first.close()
        second.close()


# -- 12: routing before keys; one control socket per instance -------------------------------------

def test_wrong_method_is_405_even_with_api_keys(seeded_settings, tmp_path):
    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log", env={"API_KEYS": "k-1"}) as base:
        response = requests.post(f"{base}/health", timeout=10)
        assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
        assert "GET" in response.headers["Allow"] and "POST" not in response.headers["Allow"]
        # Routes that exist still need the key.
        assert requests.post(f"{base}/similar-users/", json={"user_handle": 999}, timeout=10).status_code == 401
        assert requests.get(f"{base}/health", timeout=10).status_code == 200


def control_socket(log: Path) -> Path:
    """The path the instance announces (just after its workers boot)."""
    for _ in range(50):
        if match := re.search(r"Control socket listening at (\S+)", log.read_text()):
            return Path(match.group(1))
        time.sleep(0.1)
    raise AssertionError(log.read_text()[-2000:])


def test_each_instance_has_its_own_control_socket(seeded_settings, tmp_path):
    from tests.conftest import ROOT

    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with gunicorn_server(seeded_settings, first_log), gunicorn_server(seeded_settings, second_log):
        first, second = control_socket(first_log), control_socket(second_log)
        assert first != second
        assert first.parent == second.parent == ROOT / ".run"
        assert first.is_socket() and second.is_socket()
        # Each answers for its own instance: two different sets of workers.
        workers = [json.loads(subprocess.run([str(GUNICORNC), "-s", str(path), "-c", "show workers", "-j"], capture_output=True,
                                             text=True, timeout=30, check=True).stdout)["workers"] for path in (first, second)]
        pids = [{w["pid"] for w in listed} for listed in workers]
        assert len(pids[0]) == len(pids[1]) == 2 and not pids[0] & pids[1]
    assert not first.exists() and not second.exists()  # removed at shutdown


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_client_that_dribbles_its_body_sheds_no_one(seeded_settings, tmp_path, framing):
    """With one slot per worker (``MAX_IN_FLIGHT=1``), a client that has sent part of its body and
    holds the rest takes no slot, chunked or with a ``Content-Length``: a normal request is answered
    200 meanwhile, and the slow one too once its body is complete.  No timing: the server marks a
    file when it starts reading the held body (``tests/api/body_probe_app.py``)."""
    marker = tmp_path / "reading"
    env = {"MAX_IN_FLIGHT": "1", "BODY_READ_MARKER": str(marker)}
    body = json.dumps({"user_handle": 999, "k": 2}).encode()
    head = (b"POST /similar-users/ HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nX-Test-Probe: 1\r\n"
            b"Connection: close\r\n")
    if framing == "chunked":
        first = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (10, body[:10])
        rest = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - 10, body[10:])
    else:
        first = head + b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
        rest = body[10:]
    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log", workers=1, env=env,
                         app="tests.api.body_probe_app:create()") as base:
        with socket.create_connection(address(base), timeout=30) as slow:
            slow.sendall(first)
            deadline = time.monotonic() + 30  # a safety net only: the marker comes as soon as the server reads
            while not marker.exists():
                assert time.monotonic() < deadline, "the server never started reading the held body"
                time.sleep(0.01)
            fast = requests.post(f"{base}/similar-users/", json={"user_handle": 999}, timeout=10)
            assert fast.status_code == 200, fast.text
            slow.sendall(rest)
            answer = b""
            while chunk := slow.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])[0]["similar_users"] == NEIGHBOURS[:2]
