"""Keep-alive connections to one endpoint: reused when idle, replaced when the server closed them,
never reused after ``Connection: close``, and bounded waits for a silent server."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from recommender.store.http_connections import HttpConnections


class Echo(BaseHTTPRequestHandler):
    """Answers each POST with its body and the number of the connection it came on."""

    protocol_version = "HTTP/1.1"  # keep-alive
    connections = 0
    close_after_answer = False
    drop_when_idle = False  # close after answering without saying so (a keep-alive timeout)

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1
        self.number = type(self).connections

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        data = b"%d:" % self.number + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        if type(self).close_after_answer:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        if type(self).close_after_answer or type(self).drop_when_idle:
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    Echo.connections, Echo.close_after_answer, Echo.drop_when_idle = 0, False, False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("server_closes, answers, idle_after", [
    # keep-alive: one connection for all three
    (None, [b"1:a", b"1:b", b"1:c"], 1),
    # the server drops each connection after answering without saying so (its keep-alive timeout):
    # the client still keeps it, finds it closed on reuse, and sends the request once more on a new one
    ("drop_when_idle", [b"1:a", b"2:b", b"3:c"], 1),
    # "Connection: close": never put back
    ("close_after_answer", [b"1:a", b"2:b", b"3:c"], 0),
])
def test_connections_are_reused_until_the_server_closes_them(server, server_closes, answers, idle_after):
    if server_closes:
        setattr(Echo, server_closes, True)
    pool = HttpConnections(f"http://127.0.0.1:{server.server_port}")
    got = []
    for body in (b"a", b"b", b"c"):
        got.append(pool.post("/", body, {}))
        assert len(pool._idle) == idle_after
        time.sleep(0.05)  # a dropping server has closed its end by now
    assert got == [(200, answer) for answer in answers]
    assert Echo.connections == len(set(answer[:1] for answer in answers))


def test_at_most_keep_connections_stay_open(server):
    pool = HttpConnections(f"http://127.0.0.1:{server.server_port}", keep=2)
    barrier = threading.Barrier(4)
    results = []

    def call(k: int) -> None:
        barrier.wait()
        results.append(pool.post("/", b"%d" % k, {})[0])

    threads = [threading.Thread(target=call, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert len(pool._idle) <= 2


def test_a_silent_server_is_a_timeout_not_a_hang():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        pool = HttpConnections(f"http://127.0.0.1:{listener.getsockname()[1]}", connect_timeout=1.0, read_timeout=0.2)
        with pytest.raises(TimeoutError):
            pool.post("/", b"a", {})
        assert len(pool._idle) == 0
    finally:
        listener.close()


def test_a_closed_port_is_refused():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(ConnectionRefusedError):
        HttpConnections(f"http://127.0.0.1:{port}").post("/", b"a", {})


@pytest.mark.parametrize("url", ["ftp://host", "127.0.0.1:8000", "http://"])
def test_an_endpoint_that_is_not_http_is_refused_at_once(url):
    with pytest.raises(ValueError, match="endpoint URL"):
        HttpConnections(url)
