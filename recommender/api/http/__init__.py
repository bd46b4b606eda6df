"""What happens around every request, whatever the route, in one place:

* ``limits.py``: a body read whole within ``MAX_BODY_BYTES`` before anything else runs, JSON depth,
  no redirects built from the client's ``Host``;
* ``shedding.py``: at most ``MAX_IN_FLIGHT`` requests in the app per worker (503 beyond it);
* ``middleware.py``: API keys, JSON-only bodies, security headers, one access-log line and the
  metrics of each request (blueprints declare their open endpoints and page policy to it);
* ``request_ids.py``, ``logs.py``, ``metrics.py``: the request ids, the log format, Prometheus.

Nothing here knows a route: :func:`install` puts all of it around an app before its blueprints
are registered.
"""

from __future__ import annotations

from flask import Flask

from recommender.api.http import limits, logs, metrics, middleware, shedding
from recommender.config import ApiSettings


def install(app: Flask, settings: ApiSettings) -> None:
    """Before any blueprint is registered (the URL map's settings apply to the rules added later)."""
    logs.configure_logging(settings.log_level, settings.log_format)
    middleware.install(app, settings.api_keys)  # its hooks first: a refused request has an id, a log line, metrics
    limits.install(app)
    shedding.install(app, settings.max_in_flight, settings.max_body_bytes)
    metrics.watch_gc()
