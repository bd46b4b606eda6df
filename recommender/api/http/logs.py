"""Logging of the service: plain text or JSON lines (``LOG_FORMAT=json``), with the request id.

One handler on the root logger writes to stderr (gunicorn and systemd collect it).  Every record
logged while a request is being handled carries that request's id (``request_id``), so a
warning can be tied to the request's access line.
"""

from __future__ import annotations

import logging
import sys

from flask import g, has_request_context
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (``-`` outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test capture replaces it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str, fmt: str) -> None:
    """Install (once) or reconfigure the service's stderr handler on the root logger."""
    # Neither format names a record's source line, thread or process name: collecting them is a
    # third of the cost of a log record, paid on every request's access line (the logging module's
    # documented optimisations; https://docs.python.org/3/howto/logging.html#optimization).  These
    # switches are process-wide, so the process id stays: gunicorn's own format, in the same worker,
    # prints ``%(process)d`` (a worker's "Worker exiting" line failed with a TypeError without it),
    # and it costs one ``os.getpid()``.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logMultiprocessing = False
    logging.logProcesses = True
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.setLevel(level)
