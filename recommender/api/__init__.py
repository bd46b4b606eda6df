"""The Flask service (app factory).  It reads DynamoDB only and never imports TensorFlow.

Routes (``routes.py``, ``openapi.py``): ``POST /similar-users/``, ``GET /similar-users/<id>``,
``GET /health``, ``GET /metrics``, ``GET /openapi.json``, ``GET /docs``, ``POST /feedback``
(``ab.py``: A/B experiments, see ``recommender/experiments``) and the explorer pages
``GET /explore`` and ``GET /explore/experiments`` (``explore.py``).  Around them, in the ``http``
subpackage: a bound on the requests in flight (503 beyond it), optional API keys, JSON-only bodies
within limits, security headers, request ids, one access-log line per request and Prometheus metrics.
"""

from __future__ import annotations

import os

from flask import Flask

from recommender.api import http
from recommender.api.ab import feedback_bp, init_ab
from recommender.api.errors import register_error_handlers
from recommender.api.explore import explore_bp, init_explore
from recommender.api.explore_data import ExperimentReports
from recommender.api.health import init_health
from recommender.api.item_cache import with_item_cache
from recommender.api.openapi import docs_bp
from recommender.api.routes import bp
from recommender.api.run_check import RunCheck
from recommender.api.settings import init_settings
from recommender.api.store import ReadStore, init_store
from recommender.config import ApiSettings, SettingsError, load_settings
from recommender.evaluation.quality import load_quality
from recommender.experiments.live import CHECKED_ENV, LiveExperiments, experiments_file


def create_app(settings: ApiSettings | None = None, store: ReadStore | None = None) -> Flask:
    """Build the app; ``store`` defaults to DynamoDB (settings from the environment and ``.env``)."""
    settings = settings or load_settings(ApiSettings)
    app = Flask(__name__, static_folder=None)
    app.config.update(  # Flask's own keys; the service's settings are ``settings.get_settings()``
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        # Never Flask's debugger or tracebacks here, whatever FLASK_DEBUG says: only
        # ``run_server.py --debug`` (development) turns debug mode on, after this factory.
        DEBUG=False,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    app.debug = False
    init_settings(app, settings)
    http.install(app, settings)
    try:
        quality = load_quality(settings.evaluation_results_file)
    except ValueError as exc:  # a bad file stops the start with one line, as a bad setting does
        raise SettingsError(f"setting EVALUATION_RESULTS_FILE: {exc}") from None
    experiments = LiveExperiments(experiments_file(settings), settings.experiments_reload_seconds,
                                  strict=not os.environ.get(CHECKED_ENV))
    run_check = RunCheck(settings.run_check_seconds)
    exposure_log, read_records = None, None
    if store is None:
        from recommender.experiments.exposures import ExposureLog, writer_store
        from recommender.store.dynamo import DynamoStore

        store = with_item_cache(DynamoStore.for_api(settings), settings.item_cache_size, run_check)
        ab_store = writer_store(settings)
        exposure_log = ExposureLog(ab_store, settings.ab_queue_size)
        read_records = experiment_records(ab_store)
    init_store(app, store)
    init_health(app, store, run_check)
    init_ab(app, experiments, exposure_log)
    init_explore(app, quality, ExperimentReports(read_records))
    for blueprint in (feedback_bp, explore_bp, bp, docs_bp):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
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
