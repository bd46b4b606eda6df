"""The explorer: ``GET /explore`` (one user's neighbours by every model, side by side) and
``GET /explore/experiments`` (each A/B experiment's split, figures and chart), as HTML pages.

Two ways to the same markup (``templates/explore/``):

* **Without API keys** the page is rendered whole on the server: its DOM holds every neighbour
  before any script runs (``chromium --dump-dom``, screen readers, no-JavaScript browsers).
* **With API keys** the page itself holds no data, so it is served without a key (as the docs
  are): a shell that asks for the key once, keeps it in ``sessionStorage`` and fetches the
  panel (``/explore/panel``, ``/explore/experiments/panel``: the same templates, rendered on the
  server) with the ``X-API-Key`` header.  The panels need the key like every data endpoint, and
  the key never appears in a URL or a log line.

Errors are plain sentences in the page with the HTTP status of the JSON API (400 a bad handle,
404 an unknown user, 503 the database unreachable), never a trace.  The page's script and style
are static files of this package, so its Content-Security-Policy (``http.middleware.CSP_EXPLORE``)
allows nothing inline and nothing from another origin.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, url_for
from pydantic import ValidationError

from recommender.api import ab
from recommender.api.errors import validation_message
from recommender.api.explore_data import ExperimentReports, NoSuchUser, experiment_views, user_models
from recommender.api.http import metrics
from recommender.api.http.middleware import CSP_EXPLORE, declare
from recommender.api.schemas import SimilarUsersRequest
from recommender.api.settings import get_settings
from recommender.api.store import get_store
from recommender.store.dynamo import StoreUnavailable

log = logging.getLogger(__name__)

explore_bp = Blueprint("explore", __name__, template_folder="templates", static_folder="static",
                       static_url_path="/explore/static")
_QUALITY = "similar_users_explore_quality"
_REPORTS = "similar_users_explore_reports"
UNAVAILABLE = "The similar-users database cannot be reached right now. Try again in a moment."


@explore_bp.record_once
def _policy(state) -> None:
    # The pages hold no data when keys are set (the panels do): open like /health. Their static files too.
    declare(state.app, explore_bp.name, csp=CSP_EXPLORE, open_endpoints=("page", "experiments_page", "static"))


def init_explore(app: Any, quality: dict, reports: ExperimentReports) -> None:
    app.extensions[_QUALITY] = quality
    app.extensions[_REPORTS] = reports


def _needs_key() -> bool:
    return bool(get_settings().api_keys)


def _user_panel(raw: str | None) -> tuple[dict[str, Any], int]:
    """The template context of the user panel and its HTTP status."""
    if raw is None or raw.strip() == "":
        return {"user_handle": None}, 200
    try:
        user_handle = SimilarUsersRequest.model_validate({"user_handle": raw.strip()}).user_handle
    except ValidationError as exc:
        return {"user_handle": raw, "message": f"Not a user handle: {validation_message(exc)}."}, 400
    try:
        models = user_models(get_store(), user_handle, get_settings().default_model, current_app.extensions[_QUALITY])
    except NoSuchUser:
        return {"user_handle": user_handle, "message": f"User {user_handle} is unknown: no published model has similar users for them."}, 404
    except StoreUnavailable as exc:
        metrics.STORE_ERRORS.labels("get").inc()
        log.warning("database unavailable: %s", exc)
        return {"user_handle": user_handle, "message": UNAVAILABLE}, 503
    return {"user_handle": user_handle, "models": models}, 200


def _experiments_panel() -> tuple[dict[str, Any], int]:
    live = ab.live_experiments()
    if live is not None:
        live.active()  # re-reads the file when it changed, as a request inside an experiment would
    definitions = list(live.current.experiment) if live is not None else []
    try:
        views = experiment_views(definitions, current_app.extensions[_REPORTS])
    except StoreUnavailable as exc:
        log.warning("database unavailable: %s", exc)
        return {"message": UNAVAILABLE}, 503
    return {"experiments": views, "experiments_file": bool(live is not None and live.path)}, 200


def _html(template: str, status: int, **context: Any) -> Response:
    return Response(render_template(template, **context), status=status, mimetype="text/html")


@explore_bp.get("/explore")
def page():
    raw = request.args.get("user_handle")
    if _needs_key():  # the shell: the script fetches the panel with the key
        return _html("explore/user.html", 200, needs_key=True, user_handle=raw or "",
                     source=url_for("explore.panel", user_handle=raw) if raw else "")
    context, status = _user_panel(raw)
    return _html("explore/user.html", status, needs_key=False, panel=context, user_handle=raw or "")


@explore_bp.get("/explore/panel")
def panel():
    context, status = _user_panel(request.args.get("user_handle"))
    return _html("explore/_user_panel.html", status, panel=context)


@explore_bp.get("/explore/experiments")
def experiments_page():
    if _needs_key():
        return _html("explore/experiments.html", 200, needs_key=True, source=url_for("explore.experiments_panel"))
    context, status = _experiments_panel()
    return _html("explore/experiments.html", status, needs_key=False, panel=context)


@explore_bp.get("/explore/experiments/panel")
def experiments_panel():
    context, status = _experiments_panel()
    return _html("explore/_experiments_panel.html", status, panel=context)
