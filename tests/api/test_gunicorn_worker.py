"""What ``recommender/api/http/gunicorn_worker.py`` patches in gunicorn and gevent, pinned: each test
reads the library code a patch relies on and fails when an upgrade changes it, so that the patch is
checked again instead of breaking silently.  (What the patches do is tested against a real
gunicorn: ``test_hardening.py`` for the JSON errors and the silence timeout.)"""

from __future__ import annotations

import ast
import inspect
import pkgutil
import textwrap
from pathlib import Path

import gunicorn
from gunicorn import util
from gunicorn.workers.base import Worker
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from tests.conftest import ROOT


def load_worker_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pinned_gunicorn_worker", ROOT / "recommender/api/http/gunicorn_worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def statements(function) -> list[str]:
    """The function's statements, normalised (no comments, no docstring)."""
    node = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return [ast.unparse(s) for s in body]


def test_gunicorn_writes_its_own_errors_through_util_write_error_only():
    """The JSON errors replace ``util.write_error``: it must still be the one way gunicorn writes an
    error answer, called by ``Worker.handle_error`` with the arguments the replacement takes."""
    worker = load_worker_module()
    assert list(inspect.signature(util.write_error).parameters) == ["sock", "status_int", "reason", "mesg"]
    assert list(inspect.signature(worker.write_json_error).parameters) == ["sock", "status_int", "reason", "mesg"]
    last = statements(Worker.handle_error)[-1]
    assert "util.write_error(client, status_int, reason, mesg)" in last, last
    callers = []
    for module in pkgutil.walk_packages(gunicorn.__path__, "gunicorn."):
        path = Path(gunicorn.__path__[0], *module.name.split(".")[1:])
        source = (path / "__init__.py" if module.ispkg else path.with_suffix(".py")).read_text()
        if "write_error(" in source:
            callers.append(module.name)
    assert sorted(callers) == ["gunicorn.util", "gunicorn.workers.base"]  # its definition and its one caller


def test_the_gevent_workers_handle_only_makes_the_socket_blocking():
    """The silence timeout replaces ``GeventWorker.handle``, which must do nothing but make the
    socket blocking and call ``AsyncWorker.handle`` (what the replacement calls after its timeout)."""
    assert GeventWorker.__bases__ == (AsyncWorker,)
    assert statements(GeventWorker.handle) == ["client.setblocking(1)", "super().handle(listener, client, addr)"]
    assert load_worker_module().ApiWorker.__mro__[1] is GeventWorker


def test_the_gevent_worker_builds_its_server_and_pool_by_module_name():
    """New connections served first: ``GeventWorker.run`` must build the server and pool from the
    names ``StreamServer`` and ``Pool`` of its module (what the worker replaces), and gevent's
    server must start accepting through one read watcher on the listener, its pool start a greenlet
    with ``greenlet.start()`` (what the replacements change)."""
    from gevent.baseserver import BaseServer
    from gevent.pool import Pool

    run = "\n".join(statements(GeventWorker.run))
    assert "pool = Pool(self.worker_connections)" in run
    assert "server = StreamServer(s, handle=hfun, spawn=pool, **ssl_args)" in run
    assert statements(BaseServer.start_accepting) == [
        "if self._watcher is None:\n    self._watcher = self.loop.io(self.socket.fileno(), 1)\n"
        "    self._watcher.start(self._do_read)"]
    assert statements(Pool.start) == ["self.add(greenlet, *args, **kwargs)", "greenlet.start()"]


def test_the_listener_watcher_gets_libevs_highest_priority():
    """The priority the worker gives the listener's watcher is libev's highest, and gevent's loop is
    libev (libuv's watchers have no priorities)."""
    import gevent
    from gevent.libev import corecext

    worker = load_worker_module()
    loop = gevent.get_hub().loop
    assert isinstance(loop, corecext.loop)
    assert worker.LIBEV_MAXPRI == corecext.MAXPRI
    watcher = loop.io(0, 1, priority=worker.LIBEV_MAXPRI)
    try:
        assert watcher.priority == corecext.MAXPRI
    finally:
        watcher.close()


def test_gevents_accept_takes_max_accept_connections_per_read():
    """Accepting by shares sets ``max_accept`` before each of the listener's reads: gevent's read
    must still accept up to ``max_accept`` connections.  (That the listen queue's length is read
    right from ``TCP_INFO`` is tested against real sockets in ``test_shedding.py``.)"""
    from gevent.baseserver import BaseServer

    read = "\n".join(statements(BaseServer._do_read))
    assert read.startswith("for _ in xrange(self.max_accept):"), read
