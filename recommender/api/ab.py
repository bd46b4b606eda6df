"""A/B experiments in the request path: which model answers, the exposure, and ``POST /feedback``.

A request that names no ``model_handle`` while an experiment is running is answered by the
model of the user's arm (:mod:`recommender.experiments.assignment`); an explicit
``model_handle`` bypasses the experiment.  When the arm's model has no row for the user the
default model answers, with ``"variant": "fallback"`` (counted).  Every answer given inside an
experiment is an exposure, queued for the background writer (the answer never waits on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, g, jsonify
from spectree import Response

from recommender.api.errors import ApiError
from recommender.api.http.request_ids import new_request_id
from recommender.api.openapi import api_spec, error_responses
from recommender.api.schemas import ErrorBody, FeedbackAccepted, FeedbackRequest
from recommender.api.store import get_store
from recommender.experiments import metrics
from recommender.experiments.assignment import assign
from recommender.experiments.definitions import FALLBACK, Experiment
from recommender.experiments.exposures import Event, Exposure, ExposureLog
from recommender.experiments.live import LiveExperiments
from recommender.store.items import StoredItem

_EXPERIMENTS = "similar_users_experiments"
_LOG = "similar_users_exposure_log"

feedback_bp = Blueprint("feedback", __name__)


def init_ab(app: Any, experiments: LiveExperiments, exposure_log: ExposureLog | None) -> None:
    app.extensions[_EXPERIMENTS] = experiments
    app.extensions[_LOG] = exposure_log


def live_experiments() -> LiveExperiments | None:
    return current_app.extensions.get(_EXPERIMENTS)


def exposure_log() -> ExposureLog | None:
    return current_app.extensions.get(_LOG)


@dataclass(frozen=True, slots=True)
class Served:
    item: StoredItem | None
    model_handle: str
    experiment: Experiment | None = None
    arm: str | None = None
    variant: str | None = None


def _read(user_handle: int, model_handle: str) -> StoredItem | None:
    """The store's item; the model read last is the one that answers (or failed), so it is the
    request's ``model_handle`` for the access log and the metrics' label."""
    g.model_handle = model_handle
    return get_store().get(user_handle, model_handle)


def serve(user_handle: int, model_handle: str | None, default_model: str) -> Served:
    """The item that answers this request, and the experiment arm behind it if any."""
    experiments = live_experiments()
    experiment = experiments.active() if experiments is not None and model_handle is None else None
    if experiment is None:
        model = model_handle or default_model
        return Served(_read(user_handle, model), model)
    arm = assign(experiment, user_handle)
    try:
        item = _read(user_handle, arm.model)
    except LookupError:  # the arm's model has no published run: no row for anyone
        item = None
    if item is not None:
        return Served(item, arm.model, experiment, arm.name, arm.name)
    metrics.FALLBACKS.labels(experiment.name, arm.name).inc()
    return Served(_read(user_handle, default_model), default_model, experiment, arm.name, FALLBACK)


def expose(served: Served, user_handle: int, shown: list[int]) -> dict[str, Any]:
    """Record the exposure (queued) and return the answer's extra fields; nothing outside experiments."""
    if served.experiment is None:
        return {}
    # The exposure's key, which feedback names, is always made here: a client's X-Request-ID
    # (kept in the header and the log line) chosen twice, by a retry or on purpose, would
    # otherwise name two answers.  Without one, the answer's X-Request-ID is this same id.
    request_id = g.request_id if g.get("request_id_is_ours") else new_request_id()
    g.exposure_request_id = request_id
    log = exposure_log()
    if log is not None:
        log.record(Exposure(request_id, user_handle, served.experiment.name, served.arm or "", served.variant or "",
                            served.model_handle, tuple(shown)))
    return {"experiment": served.experiment.name, "variant": served.variant, "request_id": request_id}


@feedback_bp.route("/feedback", methods=["POST"], strict_slashes=False)
@api_spec.validate(
    resp=Response(HTTP_202=(FeedbackAccepted, "stored (an event sent again is accepted and counted once)"),
                  HTTP_404=(ErrorBody, "no answer given inside an experiment has this request_id (or not yet stored)"),
                  **error_responses(400, 401, 413, 415, 503)),
    tags=["experiments"],
)
def feedback(json: FeedbackRequest):
    """What a user did with a neighbour shown inside an experiment

    Body: `{"request_id": "…", "user_handle": 999, "similar_user_handle": 4254, "event": "click"}`,
    `event` one of `click`, `follow`, `dismiss`. The request id is the `request_id` field of the
    answer that showed the neighbour (made by the server; a client's `X-Request-ID` is only
    echoed for log correlation and never names an answer); 400 when that answer did not
    show it to that user, 404 when no answer inside an experiment had that request id.
    Idempotent: the same event twice counts once.
    """
    log = exposure_log()
    exposure = log.find(json.request_id) if log is not None else None
    if exposure is None:
        raise ApiError(404, "unknown_request",
                       f"request_id {json.request_id!r}: no answer given inside an experiment has this request id")
    if exposure.user_handle != json.user_handle:
        raise ApiError(400, "invalid_request",
                       f"user_handle {json.user_handle} was not the user of request {json.request_id!r}")
    if json.similar_user_handle not in exposure.similar_users:
        raise ApiError(400, "invalid_request",
                       f"similar_user_handle {json.similar_user_handle} was not in the answer of request {json.request_id!r}")
    log.record(Event(exposure, json.similar_user_handle, json.event))  # type: ignore[union-attr]
    response = jsonify(status="accepted", experiment=exposure.experiment, variant=exposure.variant)
    response.status_code = 202
    return response
