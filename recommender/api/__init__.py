"""The Flask service (app factory).  It reads DynamoDB only and never imports TensorFlow.

Routes (``routes.py``, ``openapi.py``): ``POST /similar-users/``, ``GET /similar-users/<id>``,
``GET /health``, ``GET /metrics``, ``GET /openapi.json``, ``GET /docs``, ``POST /feedback``
(``ab.py``: A/B experiments, see ``recommender/experiments``) and the explorer pages
``GET /explore`` and ``GET /explore/experiments`` (``explore.py``).  Around them
(``middleware.py``, ``limits.py``, ``shedding.py``): a bound on the requests in flight (503 beyond it), optional API keys, JSON-only bodies within limits, security headers, request ids, one
access-log line per request and Prometheus metrics.
"""

from __future__ import annotations

import os

from flask import Flask

from recommender.api import limits, metrics, middleware, shedding
from recommender.api.ab import init_ab
from recommender.api.errors import register_error_handlers
from recommender.api.health import init_health
from recommender.api.explore import init_explore
from recommender.api.explore_data import ExperimentReports
from recommender.evaluation.quality import load_quality
from recommender.api.item_cache import with_item_cache
from recommender.api.logs import configure_logging
from recommender.api.openapi import docs_bp
from recommender.api.routes import bp
from recommender.api.store import ReadStore, init_store
from recommender.config import ApiSettings, SettingsError, load_settings
from recommender.experiments.live import CHECKED_ENV, LiveExperiments, experiments_file


def create_app(settings: ApiSettings | None = None, store: ReadStore | None = None) -> Flask:
    """Build the app; ``store`` defaults to DynamoDB (settings from the environment and ``.env``)."""
    settings = settings or load_settings(ApiSettings)
    configure_logging(settings.log_level, settings.log_format)
    app = Flask(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        DEFAULT_MODEL=settings.default_model,
        API_KEYS=tuple(settings.api_keys),
        DOCS_REQUIRE_KEY=settings.docs_require_key,
        VALIDATE_RESPONSES=settings.validate_responses,
        JSON_SORT_KEYS=False,
        # Never Flask's debugger or tracebacks here, whatever FLASK_DEBUG says: only
        # ``run_server.py --debug`` (development) turns debug mode on, after this factory.
        DEBUG=False,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    app.debug = False
    app.json.sort_keys = False
    try:
        quality = load_quality(settings.evaluation_results_file)
    except ValueError as exc:  # a bad file stops the start with one line, as a bad setting does
        raise SettingsError(f"setting EVALUATION_RESULTS_FILE: {exc}") from None
    experiments = LiveExperiments(experiments_file(settings), settings.experiments_reload_seconds,
                                  strict=not os.environ.get(CHECKED_ENV))
    exposure_log, read_records = None, None
    if store is None:
        from recommender.experiments.exposures import ExposureLog, writer_store
        from recommender.store.dynamo import DynamoStore

        store = with_item_cache(DynamoStore.for_api(settings), settings.item_cache_size, settings.run_check_seconds)
        ab_store = writer_store(settings)
        exposure_log = ExposureLog(ab_store, settings.ab_queue_size)
        read_records = experiment_records(ab_store)
    init_store(app, store)
    init_health(app, store, settings.run_check_seconds)
    init_ab(app, experiments, exposure_log)
    init_explore(app, quality, ExperimentReports(read_records))
    middleware.install(app)
    limits.install(app)
    app.register_blueprint(bp)
    app.register_blueprint(docs_bp)
    register_error_handlers(app)
    shedding.install(app, settings.max_in_flight, settings.max_body_bytes)
    metrics.watch_gc()
    return app


def experiment_records(ab_store):
    """An experiment's exposures and events from DynamoDB, for the explorer's experiments view;
    a database failure is the store's ``StoreUnavailable`` (the page's 503)."""

    def read(name: str):
        from botocore.exceptions import BotoCoreError, ClientError

        from recommender.experiments import reading
        from recommender.store.dynamo import StoreUnavailable

        try:
            return reading.read(ab_store, name)
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"reading experiment {name}: {exc}") from exc

    return read
