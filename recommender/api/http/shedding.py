"""Load shedding: at most ``MAX_IN_FLIGHT`` requests in the app per worker process; beyond that,
503 ``{"error": "overloaded", ...}`` with ``Retry-After`` at once.

Why: without a bound every request that arrives is accepted and waits its turn, so when clients
send more than the machine can answer, the wait of *every* request grows with the queue (seconds,
then the clients' timeouts), and ``/health`` waits in the same queue.  With the bound, an
admitted request waits for about one turn of its worker's loop (at most ``MAX_IN_FLIGHT``
answers, plus that turn's refusals), and the others learn at once that they should come back
later.  Refusals are not free: a client that re-sends at once instead of honouring
``Retry-After`` fills the turns with them (``docs/performance.md``).

How a request is counted under gevent: a cache hit never yields to another greenlet, so counting
only around the app would see one request at a time while dozens of connections wait for the CPU
in the worker's event loop.  An admitted request therefore takes its slot and then yields once
(``time.sleep(0)``: gevent's cooperative yield once monkey-patched; a bare GIL release with
threads), so every request that arrived in the same loop turn takes, or fails to take, a slot
before any of them is served.  A slot is held until the app has returned its answer.

A request takes its slot only once its whole body has arrived (``limits.buffer_body`` reads it
first, in this greenlet, whether it comes with a ``Content-Length`` or chunked): a slow or
stalled client then holds a connection, never a slot, so 64 clients that dribble their bodies
cannot shed everyone else.  A body that cannot be read whole (short, malformed, a chunked one
past ``MAX_BODY_BYTES``) goes to the app without a slot, for its 400 or 413; a declared length
past the limit goes to the app unread (Flask's 413).

``/health`` and ``/metrics`` are never shed: a load balancer and Prometheus must still get their
answer from an overloaded server (``/health`` does not yield before its own work either).

The 503 is built here, before Flask, so refusing costs a fraction of serving: no routing, no
access-log line (a flood of refusals would otherwise write one each); it is counted in
``similar_users_http_requests_shed_total`` instead.

A refusal closes its connection.  A client that ignores ``Retry-After`` and re-sends at once on
the same connection (a closed-loop load generator, a naive retry loop) otherwise turns every loop
turn of the worker into a turn of refusals, taking the CPU the admitted requests need; closed, it
has to reconnect, and new connections are accepted at the pace of the worker's loop
(docs/performance.md has the same-minute comparison).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from recommender.api.http import limits, metrics
from recommender.api.http.middleware import security_headers
from recommender.api.http.request_ids import REQUEST_ID_HEADER, request_id_from

#: Never shed: the probes an operator needs most when the server is overloaded.
EXEMPT_PATHS = frozenset({"/health", "/metrics"})
#: Seconds a refused client is told to wait (the time a full worker needs to drain, rounded up).
RETRY_AFTER_SECONDS = 1

_BODY = json.dumps({"error": "overloaded",
                    "message": f"the server is at capacity; retry after {RETRY_AFTER_SECONDS} s"}).encode()
_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(_BODY))),
            ("Retry-After", str(RETRY_AFTER_SECONDS)), *security_headers().items()]
_WSGI_REQUEST_ID = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")


class InFlightLimit:
    """WSGI middleware around the Flask app: reads each request's body first, then admits
    ``limit`` requests at a time (0: all).

    ``on_admit(environ)``, when set, is called in an admitted request's slot before the app runs:
    the tests' injection point to hold requests in flight (never set by the service itself).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: int, max_body_bytes: int = 4096):
        self.app = app
        self.limit = limit
        self.max_body_bytes = max_body_bytes
        self.slots = threading.BoundedSemaphore(limit) if limit else None
        self.on_admit: Callable[[dict], None] | None = None

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in EXEMPT_PATHS:
            return self.app(environ, start_response)
        limits.buffer_body(environ, self.max_body_bytes)
        if self.slots is None or limits.BODY_ERROR in environ:  # an error answer needs no slot
            return self.app(environ, start_response)
        if not self.slots.acquire(blocking=False):
            return self.refuse(environ, start_response)
        try:
            time.sleep(0)  # let the requests that arrived with this one take their slots first
            if self.on_admit is not None:
                self.on_admit(environ)
            return self.app(environ, start_response)
        finally:
            self.slots.release()

    @staticmethod
    def refuse(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        metrics.SHED.inc()
        request_id = request_id_from(environ.get(_WSGI_REQUEST_ID))
        start_response("503 Service Unavailable", [*_HEADERS, ("Connection", "close"), (REQUEST_ID_HEADER, request_id)])
        close_after_answer(start_response)
        return [_BODY]


def close_after_answer(start_response: Callable[..., Any]) -> None:
    """Make the server close the connection once this answer is sent.

    A WSGI app's ``Connection: close`` header is enough for werkzeug (the standard library's
    ``send_header`` acts on it) but gunicorn drops it as hop-by-hop; its ``start_response`` is a
    bound method of the response, whose ``force_close`` does it (a no-op for any other server).
    """
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if callable(force_close):
        force_close()


def install(app: Any, limit: int, max_body_bytes: int = 4096) -> InFlightLimit:
    """Wrap ``app.wsgi_app`` (outermost, so a refusal costs nothing of Flask); returns the wrapper."""
    app.wsgi_app = wrapper = InFlightLimit(app.wsgi_app, limit, max_body_bytes)
    return wrapper
