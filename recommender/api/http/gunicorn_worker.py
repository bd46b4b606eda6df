"""The API's gunicorn worker, and every patch of gunicorn's or gevent's internals it needs, here only.

Loaded **by path** from ``recommender/api/gunicorn_conf.py`` (never imported as part of the
package: that would import boto3 into gunicorn's master before the workers monkey-patch the
standard library); it imports nothing of the service at module level for that reason.

The worker is gunicorn's gevent worker (``worker_class``, gunicorn's public way to choose one).
Each patch below reaches into something gunicorn or gevent do not publish, keeps only what a
test or ``make bench`` showed it buys, and is pinned by ``tests/api/test_gunicorn_worker.py``,
which fails when the patched code of either library changes (an upgrade must re-check it):

* **JSON errors** (:func:`write_json_error` for ``gunicorn.util.write_error``): every answer
  gunicorn writes itself (request line too long, header too large, malformed request) is JSON
  with the service's security headers and an ``X-Request-ID``, like the app's own errors.
  gunicorn has no hook for these answers; ``Worker.handle_error`` calls ``util.write_error``.
* **A silence timeout per connection** (:meth:`ApiWorker.handle`): a client that sends nothing
  for ``CLIENT_SILENCE_SECONDS`` while we wait for its request, or reads nothing of our answer, is
  disconnected.  ``GeventWorker.handle`` only makes the socket blocking (no timeout), so this
  sets the timeout instead and calls what it would have called.
* **New connections served first** (:class:`FirstServedServer`, :class:`FirstServedPool`, which
  ``GeventWorker.run`` builds by these names from its module).  A saturated worker's loop turn runs
  every admitted request's app work (queued callbacks, see ``shedding.py``), then polls the
  sockets; gevent starts a new connection's greenlet as one more callback, so a load balancer's
  ``/health`` probe, which opens a new connection each time, waited for up to two turns.  Here the
  listener's watcher has libev's highest priority and a new connection's greenlet starts from the
  accept itself, so its request is read (and ``/health`` answered) before the queued work; any
  other request takes its place in the in-flight bound.
* **A burst of new connections accepted by shares** (:meth:`FirstServedServer._do_read`).
  gunicorn has each of several workers accept one connection per loop turn, so that a busy worker
  (long turns) takes fewer and the connections spread by load.  When many clients connect at once
  (64 in the same millisecond after a deploy, or a load generator starting), the listen queue then
  drains one connection per turn while every turn grows with the connections already taken, and
  a probe queued behind them waits for all those turns.  Each accept therefore takes this
  worker's share of what is queued (the listen queue's length from ``TCP_INFO``, divided by the
  workers, at least one).  Where ``TCP_INFO`` cannot be read, one per turn, as gunicorn does.

What the last two buy under 64 connections was measured with and without each (docs/performance.md).
"""

from __future__ import annotations

import json
import socket
import struct
import uuid

import gevent
from gunicorn import util
from gunicorn.workers import ggevent
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

#: libev's highest watcher priority (``EV_MAXPRI``): run first among the ready watchers.
LIBEV_MAXPRI = 2

# A client that sends nothing for this long while we wait for (the rest of) its request, or
# reads nothing of our answer, is disconnected.
CLIENT_SILENCE_SECONDS = 10.0

# What gunicorn's own errors say; never the client's input echoed back, never internals.
_MESSAGES = {
    400: "malformed HTTP request",
    403: "request forbidden",
    414: "request line too long",
    417: "expectation failed",
    431: "request header fields too large",
    500: "internal server error",
    501: "unsupported transfer coding",
}


def _reason_code(reason: str) -> str:
    """``URI Too Long`` → ``uri_too_long``: the ``error`` field of our JSON errors."""
    return reason.lower().replace(" ", "_").replace("-", "_")


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Replacement for ``gunicorn.util.write_error`` (its only caller is ``Worker.handle_error``)."""
    from recommender.api.http.middleware import security_headers
    from recommender.api.http.request_ids import REQUEST_ID_HEADER

    body = json.dumps({"error": _reason_code(reason), "message": _MESSAGES.get(status_int, reason.lower())}).encode()
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Connection": "close",
        **security_headers(),
        REQUEST_ID_HEADER: uuid.uuid4().hex,
    }
    head = f"HTTP/1.1 {status_int} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    util.write_nonblock(sock, head.encode("latin-1") + body)


class FirstServedServer(ggevent.StreamServer):
    """gevent's accepting server, whose listener is polled before the connections already open and
    whose share of a burst of new connections is accepted in one go."""

    #: Worker processes sharing the listener (set by :class:`ApiWorker` from gunicorn's settings).
    workers = 1

    def start_accepting(self) -> None:
        if self._watcher is None:
            self._watcher = self.loop.io(self.socket.fileno(), 1, priority=LIBEV_MAXPRI)
            self._watcher.start(self._do_read)

    def _do_read(self) -> None:
        self.max_accept = max(1, -(-listen_queue_length(self.socket) // self.workers))
        super()._do_read()


#: ``struct tcp_info`` (linux/tcp.h): ``tcpi_unacked``, which holds a listening socket's accept
#: queue length, is the 32-bit field after 8 one-byte fields and 4 32-bit ones.
_TCPI_UNACKED_OFFSET = 24


def listen_queue_length(sock) -> int:
    """Connections waiting in a listening TCP socket's accept queue (Linux: ``tcpi_unacked`` of
    ``TCP_INFO`` holds it for a socket in LISTEN); 0 where that cannot be read."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return struct.unpack_from("I", info, _TCPI_UNACKED_OFFSET)[0] if len(info) >= _TCPI_UNACKED_OFFSET + 4 else 0
    except (OSError, AttributeError):
        return 0


class FirstServedPool(ggevent.Pool):
    """A pool whose greenlets start inside the call that adds them when that call runs in the hub
    (the accept of :class:`FirstServedServer`), rather than in a later callback."""

    def start(self, greenlet, *args, **kwargs) -> None:
        self.add(greenlet, *args, **kwargs)
        if gevent.getcurrent() is gevent.get_hub():
            greenlet.switch()  # runs until it first waits (its socket, a slot's yield), then back here
        else:
            greenlet.start()


class ApiWorker(GeventWorker):
    """gunicorn's gevent worker, with JSON errors, a silence timeout per connection and new
    connections served first."""

    def init_process(self) -> None:
        # After the fork: this worker process only.
        util.write_error = write_json_error
        ggevent.StreamServer, ggevent.Pool = FirstServedServer, FirstServedPool  # what GeventWorker.run builds
        FirstServedServer.workers = max(1, self.cfg.workers)
        super().init_process()

    def handle(self, listener, client, addr) -> None:
        # GeventWorker.handle only makes the socket blocking (no timeout); a timeout instead.
        client.settimeout(CLIENT_SILENCE_SECONDS)
        AsyncWorker.handle(self, listener, client, addr)
