"""The service's app for a real gunicorn in the tests, with one injection point: when a request
marked ``X-Test-Probe`` starts reading its body, the file ``BODY_READ_MARKER`` is created.

The test then knows, without timing, that gunicorn has handed that request to the app and is
waiting for the rest of its body (``tests/api/test_hardening.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from recommender.api import create_app


class _MarkingBody:
    def __init__(self, stream, marker: Path):
        self.stream, self.marker = stream, marker

    def read(self, *args):
        self.marker.touch()
        return self.stream.read(*args)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def create():
    app = create_app()
    service, marker = app.wsgi_app, Path(os.environ["BODY_READ_MARKER"])

    def probed(environ, start_response):
        if environ.get("HTTP_X_TEST_PROBE"):
            environ["wsgi.input"] = _MarkingBody(environ["wsgi.input"], marker)
        return service(environ, start_response)

    app.wsgi_app = probed
    return app
