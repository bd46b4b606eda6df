"""The Flask service (app factory).  It reads DynamoDB only and never imports TensorFlow."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from recommender.api.errors import register_error_handlers
from recommender.api.routes import bp
from recommender.config import Settings, load_settings
from recommender.models.registry import MODEL_HANDLES


def create_app(settings: Settings | None = None, store: Any = None) -> Flask:
    """Build the app; ``store`` (anything with ``get`` and ``ping``) defaults to DynamoDB."""
    settings = settings or load_settings()
    if settings.default_model not in MODEL_HANDLES:
        raise ValueError(f"DEFAULT_MODEL {settings.default_model!r} is not one of {', '.join(MODEL_HANDLES)}")
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        DEFAULT_MODEL=settings.default_model,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    if store is None:
        from recommender.store.dynamo import DynamoStore

        store = DynamoStore.for_api(settings)
    app.extensions["similar_users_store"] = store
    app.register_blueprint(bp)
    register_error_handlers(app)
    return app
