"""gunicorn settings for the API: ``gunicorn -c recommender/api/gunicorn_conf.py 'recommender.api:create_app()'``.

Load this file **by path**, not as ``python:recommender.api.gunicorn_conf``: importing the
package would import boto3 into the master before the gevent workers monkey-patch the standard
library, and botocore's SSL context then recurses forever (gevent/gevent#1016 upstream).  This file
imports nothing of the service for that reason.

Why gevent workers (docs/operations/index.md): a client that sends its headers and then dribbles
its body holds whatever reads that body.  With thread workers that is one of a handful of
threads, and 16 such clients stalled the whole API, ``/health`` included.  A gevent worker
gives each connection a greenlet (``worker_connections`` of them per worker), so slow clients
only cost memory, and a client silent for ``CLIENT_SILENCE_SECONDS`` is dropped.

Every answer gunicorn writes itself (request line too long, header too large, malformed
request) is JSON with the service's security headers, like the app's own errors.

Command-line options (``--workers``, ``--bind``) still win.  The master reads ``.env`` of the
working directory into its environment at start (``recommender.config.load_env_file``), so the
workers, boto3's credentials included, see it without ``make`` exporting it.  The hooks keep Prometheus'
multiprocess mode right (``PROMETHEUS_MULTIPROC_DIR``, see ``recommender/api/http/metrics.py``) and
give the workers one shared pointer cache (``POINTER_CACHE_DIR``, see
``recommender/store/pointer_cache.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import uuid

import gevent
from gunicorn import util
from gunicorn.workers import ggevent
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

if "botocore" in sys.modules:
    raise RuntimeError("load the gunicorn settings by path: gunicorn -c recommender/api/gunicorn_conf.py …")

wsgi_app = "recommender.api:create_app()"
# A client that sends nothing for this long while we wait for (the rest of) its request, or
# reads nothing of our answer, is disconnected.
CLIENT_SILENCE_SECONDS = 10.0
# Simultaneous connections per worker (each a greenlet; gunicorn's default).
worker_connections = 1000
# The app logs one line per request itself (with the request id); gunicorn's would be a second.
accesslog = None
# Behind a proxy, trust X-Forwarded-* only from the local machine (gunicorn's default).
forwarded_allow_ips = "127.0.0.1"
# gunicorn's control socket (gunicornc) defaults to one path per user: every instance on a host
# would take over the previous one's.  Each instance gets its own, named by the master's pid.
control_socket = os.path.abspath(os.path.join(".run", f"gunicorn-{os.getpid()}.ctl"))


def _reason_code(reason: str) -> str:
    """``URI Too Long`` → ``uri_too_long``: the ``error`` field of our JSON errors."""
    return reason.lower().replace(" ", "_").replace("-", "_")


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
    """gevent's accepting server, whose new connections are served before the work already queued,
    and whose share of a burst of new connections is accepted in one go.

    Why: a saturated worker's loop turn runs every admitted request's app work (they are queued
    as callbacks, see ``recommender/api/shedding.py``), then polls the sockets.  gevent starts a
    new connection's greenlet as one more callback, so a load balancer's ``/health`` probe, which
    opens a new connection each time, waited for the turn it arrived in, then the poll, then the
    next turn's queue: up to two turns.  Here the listener's watcher has libev's highest priority
    (run first among the ready sockets) and a new connection's greenlet starts at once, from the
    accept: the request the client sent with its connection is read and, for ``/health``, answered
    before the queued work runs; any other request takes its place in the in-flight bound.

    How many to accept per turn: gunicorn accepts one connection per turn when it runs several
    workers, so that one worker does not take every connection (a worker whose turns are long
    accepts less often: the connections spread by load).  But when many clients connect at once
    (64 in the same millisecond after a deploy, or a load generator starting), the listen queue
    then drains one connection per turn while every turn grows with the connections already
    taken, and a probe queued behind them waited for all those turns.  Each accept therefore
    takes this worker's share of what is queued (the listen queue's length from ``TCP_INFO``,
    divided by ``workers``, at least one): a burst is taken in about one turn, still spread over
    the workers.  Where ``TCP_INFO`` cannot be read, one per turn, as gunicorn does.
    """

    #: Worker processes sharing the listener (set by :class:`ApiWorker` from gunicorn's settings).
    workers = 1

    def start_accepting(self) -> None:
        if self._watcher is None:
            self._watcher = self.loop.io(self.socket.fileno(), 1, priority=2)  # EV_MAXPRI
            self._watcher.start(self._do_read)

    def _do_read(self) -> None:
        self.max_accept = max(1, -(-listen_queue_length(self.socket) // self.workers))
        super()._do_read()


def listen_queue_length(sock) -> int:
    """Connections waiting in a listening TCP socket's accept queue (Linux: ``tcpi_unacked`` of
    ``TCP_INFO`` holds it for a socket in LISTEN); 0 where that cannot be read."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return struct.unpack_from("I", info, 24)[0] if len(info) >= 28 else 0
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
    connections served first (:class:`FirstServedServer`)."""

    def init_process(self) -> None:
        util.write_error = write_json_error  # after the fork: this worker process only
        ggevent.StreamServer, ggevent.Pool = FirstServedServer, FirstServedPool  # what GeventWorker.run builds
        FirstServedServer.workers = max(1, self.cfg.workers)
        super().init_process()

    def handle(self, listener, client, addr) -> None:
        # GeventWorker.handle only makes the socket blocking (no timeout); a timeout instead.
        client.settimeout(CLIENT_SILENCE_SECONDS)
        AsyncWorker.handle(self, listener, client, addr)


worker_class = ApiWorker


def on_starting(server) -> None:
    # ``.env`` of the working directory, before anything reads the environment; the workers
    # inherit it (the variables already set win over the file).
    from recommender.config import load_env_file

    load_env_file()
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
    check_before_serving(server.cfg.bind)
    # One pointer cache for all the workers of this instance (inherited through the fork).
    if not os.environ.get("POINTER_CACHE_DIR"):
        os.environ["POINTER_CACHE_DIR"] = tempfile.mkdtemp(prefix="similar-users-pointers-")
        server._own_pointer_cache = os.environ["POINTER_CACHE_DIR"]


def on_exit(server) -> None:
    owned = getattr(server, "_own_pointer_cache", None)
    if owned:
        shutil.rmtree(owned, ignore_errors=True)


def check_before_serving(binds: list[str]) -> None:
    """Refuse to start (one line, exit 2), before any socket is bound or worker booted (a worker
    failing to boot would only say so in a traceback), on a bad setting, a broken EXPERIMENTS_FILE
    or EVALUATION_RESULTS_FILE, or a ``--bind`` address other machines reach while ``API_KEYS`` is
    empty (:func:`recommender.config.public_without_keys`, the rule ``run_server.py`` applies to
    ``HOST``): whoever starts gunicorn with this file gets the same checks as ``make serve``."""
    from recommender.evaluation.quality import load_quality
    from recommender.config import ApiSettings, SettingsError, load_settings, public_without_keys
    from recommender.experiments.live import check_at_start, experiments_file

    try:
        settings = load_settings(ApiSettings)
        for bind in binds:
            try:
                address = util.parse_address(bind)
            except RuntimeError:
                continue  # not an address: gunicorn refuses it itself when it binds
            if isinstance(address, str):  # a unix socket: this machine only
                continue
            host = address[0] if isinstance(address, tuple) else bind  # fd://N: cannot tell, so public
            if (problem := public_without_keys(host, settings, shown=f"--bind {bind}")) is not None:
                raise SettingsError(problem)
        path = experiments_file(settings)
        load_quality(settings.evaluation_results_file)
    except (SettingsError, ValueError) as exc:
        message = str(exc) if isinstance(exc, SettingsError) else f"setting EVALUATION_RESULTS_FILE: {exc}"
        print(f"error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    check_at_start(path)


def post_worker_init(worker) -> None:
    """Move everything the app loaded (botocore's service models, Flask, pydantic) out of the
    garbage collector's sight: a full collection walked them all, with the worker's other
    requests waiting (the ``gc.freeze`` advice for pre-fork servers)."""
    import gc

    gc.collect()
    gc.freeze()


def child_exit(server, worker) -> None:
    """A dead worker's live gauges must stop counting (its counters stay in the totals)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
