"""gunicorn settings for the API: ``gunicorn -c recommender/api/gunicorn_conf.py 'recommender.api:create_app()'``.

Load this file **by path**, not as ``python:recommender.api.gunicorn_conf``: importing the
package would import boto3 into the master before the gevent workers monkey-patch the standard
library, and botocore's SSL context then recurses forever (gevent/gevent#1016 upstream).  This file
imports nothing of the service for that reason, and loads its worker class by path too.

Why gevent workers (docs/operations/index.md): a client that sends its headers and then dribbles
its body holds whatever reads that body.  With thread workers that is one of a handful of
threads, and 16 such clients stalled the whole API, ``/health`` included.  A gevent worker
gives each connection a greenlet (``worker_connections`` of them per worker), so slow clients
only cost memory, and a client silent for ``CLIENT_SILENCE_SECONDS`` is dropped
(``recommender/api/http/gunicorn_worker.py``, with JSON answers for gunicorn's own errors).

Command-line options (``--workers``, ``--bind``) still win.  The master reads ``.env`` of the
working directory into its environment at start (``recommender.config.load_env_file``), so the
workers, boto3's credentials included, see it without ``make`` exporting it.  The hooks keep Prometheus'
multiprocess mode right (``PROMETHEUS_MULTIPROC_DIR``, see ``recommender/api/http/metrics.py``) and
give the workers one shared pointer cache (``POINTER_CACHE_DIR``, see
``recommender/store/pointer_cache.py``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile

from gunicorn import util

if "botocore" in sys.modules:
    raise RuntimeError("load the gunicorn settings by path: gunicorn -c recommender/api/gunicorn_conf.py …")


def _load_worker_module():
    """``http/gunicorn_worker.py`` next to this file, by path (see above), once per process."""
    name = "similar_users_gunicorn_worker"
    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "http", "gunicorn_worker.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


wsgi_app = "recommender.api:create_app()"
worker_class = _load_worker_module().ApiWorker
# Simultaneous connections per worker (each a greenlet; gunicorn's default).
worker_connections = 1000
# The app logs one line per request itself (with the request id); gunicorn's would be a second.
accesslog = None
# Behind a proxy, trust X-Forwarded-* only from the local machine (gunicorn's default).
forwarded_allow_ips = "127.0.0.1"
# gunicorn's control socket (gunicornc) defaults to one path per user: every instance on a host
# would take over the previous one's.  Each instance gets its own, named by the master's pid.
control_socket = os.path.abspath(os.path.join(".run", f"gunicorn-{os.getpid()}.ctl"))


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
