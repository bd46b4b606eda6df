"""The Flask service (app factory).  It reads DynamoDB only and never imports TensorFlow.

Routes (``routes.py``, ``openapi.py``): ``POST /similar-users/``, ``GET /similar-users/<id>``,
``GET /health``, ``GET /metrics``, ``GET /openapi.json``, ``GET /docs``.  Around them
(``middleware.py``): optional API keys, JSON-only bodies, security headers, request ids, one
access-log line per request and Prometheus metrics.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from recommender.api import middleware
from recommender.api.errors import register_error_handlers
from recommender.api.logs import configure_logging
from recommender.api.openapi import docs_bp
from recommender.api.routes import bp
from recommender.config import Settings, load_settings
from recommender.models.registry import MODEL_HANDLES


def create_app(settings: Settings | None = None, store: Any = None) -> Flask:
    """Build the app; ``store`` (anything with ``get`` and ``ping``) defaults to DynamoDB."""
    settings = settings or load_settings()
    if settings.default_model not in MODEL_HANDLES:
        raise ValueError(f"DEFAULT_MODEL {settings.default_model!r} is not one of {', '.join(MODEL_HANDLES)}")
    configure_logging(settings.log_level, settings.log_format)
    app = Flask(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        DEFAULT_MODEL=settings.default_model,
        API_KEYS=tuple(settings.api_keys),
        JSON_SORT_KEYS=False,
        # Never Flask's debugger or tracebacks here, whatever FLASK_DEBUG says: only
        # ``run_server.py --debug`` (development) turns debug mode on, after this factory.
        DEBUG=False,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    app.debug = False
    app.json.sort_keys = False
    if store is None:
        from recommender.store.dynamo import DynamoStore

        store = DynamoStore.for_api(settings)
    app.extensions["similar_users_store"] = store
    middleware.install(app)
    app.register_blueprint(bp)
    app.register_blueprint(docs_bp)
    register_error_handlers(app)
    return app
