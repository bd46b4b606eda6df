"""Load shedding (``recommender/api/http/shedding.py``), over real HTTP and without timing: requests
are held in flight by the middleware's injection point until the test releases them."""

from __future__ import annotations

import http.client
import json
import threading
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor

import pytest
from werkzeug.serving import make_server

from recommender.api.http import shedding
from recommender.api.http.metrics import exposition
from tests.api.conftest import NEIGHBOURS

PORT = 5131
WAIT = 30  # seconds: only a safety net against a hung test, never what the test measures


def call(method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=WAIT)
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None,
                     {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        data = response.read()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, dict(response.getheaders()), json.loads(data) if is_json else data
    finally:
        conn.close()


def shed_total() -> float:
    text = exposition()[0].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("similar_users_http_requests_shed_total "))


@contextmanager
def _released_on_failure(release: threading.Event):
    """A failed assertion must not leave the held requests waiting (the pool's exit waits for them)."""
    try:
        yield
    finally:
        release.set()


@pytest.fixture
def held_server(memory_app):
    """A threaded server on an app with ``MAX_IN_FLIGHT=2`` whose admitted requests wait for ``release``."""
    app = memory_app(max_in_flight=2)
    limiter = app.wsgi_app
    assert isinstance(limiter, shedding.InFlightLimit)
    entered = threading.Semaphore(0)
    release = threading.Event()

    def hold(environ):
        entered.release()
        assert release.wait(WAIT), "the test never released the held requests"

    limiter.on_admit = hold
    server = make_server("127.0.0.1", PORT, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield entered, release
    finally:
        release.set()
        server.shutdown()
        thread.join(WAIT)


def test_beyond_the_bound_a_request_gets_503_with_retry_after_and_health_still_answers(held_server):
    entered, release = held_server
    before = shed_total()
    with ThreadPoolExecutor(2) as pool, _released_on_failure(release):
        held = [pool.submit(call, "POST", "/similar-users/", {"user_handle": 999}) for _ in range(2)]
        for _ in held:  # both admitted requests are now inside the app, holding the two slots
            assert entered.acquire(timeout=WAIT)

        status, headers, body = call("POST", "/similar-users/", {"user_handle": 999}, {"X-Request-ID": "third-one"})
        assert status == 503
        assert body["error"] == "overloaded" and "retry" in body["message"]
        assert headers["Retry-After"] == str(shedding.RETRY_AFTER_SECONDS)
        assert headers["X-Request-ID"] == "third-one"
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Connection"] == "close"
        assert shed_total() == before + 1

        # The operator's probes are exempt from the bound.
        assert call("GET", "/health")[0] == 200
        status, _, text = call("GET", "/metrics")
        assert status == 200 and b"similar_users_http_requests_shed_total" in text
        assert not any(f.done() for f in held)

        release.set()
        answers = [f.result(WAIT) for f in held]
    assert [a[0] for a in answers] == [200, 200]
    assert all(a[2][0]["user_handle"] == 999 for a in answers)
    # With the slots free again, the next request is served.
    assert call("POST", "/similar-users/", {"user_handle": 999})[0] == 200
    assert shed_total() == before + 1


def test_a_slot_is_given_back_when_the_app_fails(memory_app):
    """A request that raises inside the app frees its slot (else the worker would shed for ever)."""
    app = memory_app(max_in_flight=1)
    limiter = app.wsgi_app

    def fail(environ):
        raise RuntimeError("injected")

    limiter.on_admit = fail
    with pytest.raises(RuntimeError):
        app.test_client().post("/similar-users/", json={"user_handle": 999})
    limiter.on_admit = None
    assert app.test_client().post("/similar-users/", json={"user_handle": 999}).status_code == 200


def test_zero_means_no_bound(memory_app):
    app = memory_app(max_in_flight=0)
    assert app.wsgi_app.slots is None
    assert app.test_client().post("/similar-users/", json={"user_handle": 999}).status_code == 200


GEVENT_BURST = """
from gevent import monkey
monkey.patch_all()
import gevent
from recommender.api.http.shedding import InFlightLimit

def app(environ, start_response):  # a cache hit: no I/O, so it never yields by itself
    start_response("200 OK", [])
    return [b"ok"]

limiter = InFlightLimit(app, 2)
statuses = []
def one():
    limiter({"PATH_INFO": "/similar-users/"}, lambda status, headers: statuses.append(status.split()[0]))
gevent.joinall([gevent.spawn(one) for _ in range(5)])
print(" ".join(sorted(statuses)))
"""


def test_under_gevent_requests_that_arrive_together_are_counted_together():
    """Five requests ready in the same turn of a gevent worker's loop, none of which would yield
    by itself: two are admitted and three refused, rather than five served one after the other
    while the others wait (what counting only around the app would do)."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", GEVENT_BURST], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["200", "200", "503", "503", "503"]


def test_a_refusal_closes_its_connection_under_gunicorn_too():
    """gunicorn drops an app's ``Connection: close``; the refusal asks its response object instead."""
    from gunicorn.http.wsgi import Response

    class Request:  # what Response reads of gunicorn's parsed request
        version, method, headers = (1, 1), "POST", []
        def should_close(self):
            return False

    class Config:
        is_ssl, secure_scheme_headers, forwarded_allow_ips = False, {}, ["127.0.0.1"]
        header_map = "drop"

    served = Response(Request(), sock=None, cfg=Config())
    served.start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    assert not served.should_close()  # an answer with a length keeps its connection
    response = Response(Request(), sock=None, cfg=Config())
    body = shedding.InFlightLimit.refuse({}, response.start_response)
    assert response.status_code == 503 and body
    assert response.should_close()


NEW_CONNECTION_FIRST = """
import sys
from gevent import monkey
monkey.patch_all()
import runpy
import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.server import StreamServer

conf = runpy.run_path("recommender/api/http/gunicorn_worker.py")
server_class, pool_class = ((conf["FirstServedServer"], conf["FirstServedPool"]) if sys.argv[1] == "first"
                            else (StreamServer, Pool))
BUSY = 8
order, accepted, connected, everything_read = [], [], Event(), Event()

def handle(sock, addr):  # one line per request
    accepted.append(addr)
    if len(accepted) == BUSY:
        connected.set()
    for line in sock.makefile("rb"):
        order.append(line.strip().decode())
        if len(order) == BUSY + 1:
            everything_read.set()
        gevent.sleep(0)  # an admitted request's yield (recommender/api/http/shedding.py)

pool = pool_class(100)
server = server_class(("127.0.0.1", 0), handle, spawn=pool)
server.max_accept = 1  # as gunicorn sets it with more than one worker
server.start()
RawSocket = monkey.get_original("socket", "socket")
busy = [RawSocket() for _ in range(BUSY)]
for client in busy:
    client.connect(server.address)
assert connected.wait(30), "the busy connections were not accepted"
# From here to the wait nothing yields: when the worker's loop polls next, every busy connection
# has a request waiting and so has the listener (a new connection with its request).
for i, client in enumerate(busy):
    client.sendall(f"work-{i}\\n".encode())
probe = RawSocket()
probe.connect(server.address)
probe.sendall(b"health\\n")
assert everything_read.wait(30), order
print(" ".join(order))
"""


@pytest.mark.parametrize("server", ["first", "stock"])
def test_a_new_connection_is_read_before_the_requests_already_waiting(server):
    """A probe on a new connection (what a load balancer's ``/health`` check opens) whose request
    is ready in the same loop turn as eight kept-alive connections' requests is read first by the
    worker's server (``FirstServedServer``); gevent's own server reads it last, a turn later."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", NEW_CONNECTION_FIRST, server], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    order = out.stdout.split()
    assert sorted(order) == sorted(["health", *(f"work-{i}" for i in range(8))])
    assert (order[0] == "health") is (server == "first"), order
    if server == "stock":
        assert order[-1] == "health", order


BURST_SHARE = """
from gevent import monkey
monkey.patch_all()
import runpy
from gevent.pool import Pool

conf = runpy.run_path("recommender/api/http/gunicorn_worker.py")
server_class = conf["FirstServedServer"]
server_class.workers = 2
server = server_class(("127.0.0.1", 0), lambda sock, addr: sock.recv(1), spawn=Pool(100))
server.start()
RawSocket = monkey.get_original("socket", "socket")
clients = [RawSocket() for _ in range(9)]
for client in clients:
    client.connect(server.address)
queued = conf["listen_queue_length"](server.socket)
server._do_read()  # one turn's accept (from here, not the loop: nothing else runs meanwhile)
print(queued, len(server.pool), conf["listen_queue_length"](server.socket))
"""


def test_a_burst_of_connections_is_accepted_by_shares():
    """Nine connections queued on the listener of one of two workers: one accept takes its share,
    five (nine halved, rounded up), and leaves the rest to the other worker, rather than one a turn."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", BURST_SHARE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["9", "5", "4"]


class HeldBody:
    """A request body whose client sends ``before`` and then stalls until the test releases it:
    ``waiting`` is set once the server asks for more than ``before`` (it is then reading the body)."""

    def __init__(self, before: bytes, rest: bytes):
        self.parts = [before, rest] if before else [rest]
        self.waiting = threading.Event()
        self.release = threading.Event()
        self.given = 0

    def read(self, size: int = -1) -> bytes:
        if self.given == len(self.parts):
            return b""
        if self.given == len(self.parts) - 1:  # the rest: only once the client sends it
            self.waiting.set()
            assert self.release.wait(WAIT), "the test never released the held body"
        part = self.parts[self.given]
        self.given += 1
        return part


@pytest.mark.parametrize("kind", ["chunked", "content-length"])
def test_a_client_that_dribbles_its_body_takes_no_slot(memory_app, kind):
    """With ``MAX_IN_FLIGHT=1``, a client whose body is still on its way (chunked, or short of its
    ``Content-Length``) holds no slot: another request is served meanwhile, and the slow one is
    answered in full once its body has arrived."""
    app = memory_app(max_in_flight=1)
    client = app.test_client()
    body = json.dumps({"user_handle": 999, "k": 2}).encode()
    held = HeldBody(body[:10] if kind == "chunked" else b"", body[10:] if kind == "chunked" else body)
    framing = ({"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": ""} if kind == "chunked"
               else {"CONTENT_LENGTH": str(len(body))})

    def slow():
        return app.test_client().post("/similar-users/", content_type="application/json",
                           environ_overrides={"wsgi.input": held, **framing})

    before = shed_total()
    with ThreadPoolExecutor(1) as pool, _released_on_failure(held.release):
        answer = pool.submit(slow)
        assert held.waiting.wait(WAIT)  # the server is reading the slow body, which has not all arrived
        fast = client.post("/similar-users/", json={"user_handle": 999})
        assert fast.status_code == 200, fast.get_json()
        assert not answer.done()
        held.release.set()
        response = answer.result(WAIT)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()[0]["similar_users"] == NEIGHBOURS[:2]
    assert shed_total() == before


@pytest.mark.parametrize(("kind", "status", "error"), [
    ("chunked-over-the-limit", 413, "payload_too_large"),
    ("chunked-broken", 400, "bad_request"),
    ("short-of-its-length", 400, "bad_request"),
])
def test_a_body_that_cannot_be_read_whole_is_answered_by_the_app_without_a_slot(memory_app, kind, status, error):
    """Its answer is the app's JSON error (counted and logged like any other), and it takes no slot:
    with the only slot held, it is still answered, not shed."""
    import io

    app = memory_app(max_in_flight=1, max_body_bytes=256)
    limiter = app.wsgi_app
    entered, release = threading.Event(), threading.Event()

    def hold(environ):
        entered.set()
        assert release.wait(WAIT)

    class Broken(io.BytesIO):
        def read(self, size=-1):
            raise ValueError("Invalid chunk size")  # what gunicorn's chunk parser raises

    stream, framing = {
        "chunked-over-the-limit": (io.BytesIO(b"x" * 300), {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": ""}),
        "chunked-broken": (Broken(), {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": ""}),
        "short-of-its-length": (io.BytesIO(b'{"user_handle"'), {"CONTENT_LENGTH": "100"}),
    }[kind]
    client = app.test_client()
    limiter.on_admit = hold
    with ThreadPoolExecutor(1) as pool, _released_on_failure(release):
        occupant = pool.submit(app.test_client().post, "/similar-users/", json={"user_handle": 999})
        assert entered.wait(WAIT)
        limiter.on_admit = None
        response = client.post("/similar-users/", content_type="application/json",
                               environ_overrides={"wsgi.input": stream, **framing})
        release.set()
        assert occupant.result(WAIT).status_code == 200
    assert response.status_code == status
    assert response.get_json()["error"] == error and response.get_json()["message"]
