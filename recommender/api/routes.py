"""HTTP routes: the original ``POST /similar-users/``, its GET convenience, the model list, health and metrics.

Requests are validated by spectree against the pydantic models of ``schemas.py`` (failures
become our JSON 400s in ``errors.spectree_before``); the same models make the OpenAPI document.
"""

from __future__ import annotations

from flask import Blueprint, Response as FlaskResponse, jsonify
from pydantic import ValidationError
from spectree import Response

from recommender.api import ab
from recommender.api.errors import ApiError, validation_message
from recommender.api.health import get_health
from recommender.api.http import metrics
from recommender.api.http.middleware import declare
from recommender.api.models_list import models_answer
from recommender.api.openapi import NO_INPUT, api_spec, error_responses
from recommender.api.settings import get_settings
from recommender.api.store import get_store
from recommender.reasons import described
from recommender.api.schemas import (
    HealthBody,
    ModelsAnswer,
    SimilarUsersAnswer,
    SimilarUsersQuery,
    SimilarUsersRequest,
)

bp = Blueprint("similar_users", __name__)


@bp.record_once
def _policy(state) -> None:
    declare(state.app, bp.name, open_endpoints=("health",))  # a load balancer's probe has no key

ANSWER = Response(
    HTTP_200=(list[SimilarUsersAnswer], "a list holding one object: the neighbours, most similar first"),
    **error_responses(400, 401, 404, 503),
)
POST_ANSWER = Response(
    HTTP_200=(list[SimilarUsersAnswer], "a list holding one object: the neighbours, most similar first"),
    **error_responses(400, 401, 404, 413, 415, 503),
)


def _answer(req: SimilarUsersRequest):
    # Inside a running experiment (no model_handle asked) the user's arm picks the model.
    served = ab.serve(req.user_handle, req.model_handle, get_settings().default_model)
    model_handle, item = served.model_handle, served.item
    if item is None:
        raise ApiError(404, "not_found", f"no similar users stored for user_handle {req.user_handle} and model_handle {model_handle}")
    neighbours = item.neighbours[: req.k]
    # The original specification's shape: a list holding one object.
    answer = {
        "model_handle": model_handle,
        "similar_users": [n.user_handle for n in neighbours],
        "user_handle": req.user_handle,
        "scores": [n.score for n in neighbours],
        "generated_at": item.generated_at or None,
    }
    answer.update(ab.expose(served, req.user_handle, answer["similar_users"]))
    if req.explain:
        neighbours = item.explained().neighbours[: req.k]
        answer["neighbours"] = [
            {"user_handle": n.user_handle, "score": n.score,
             "reasons": [described(r) for r in n.reasons]}
            for n in neighbours
        ]
    return jsonify([answer])


@bp.route("/similar-users/", methods=["POST"], strict_slashes=False)
@api_spec.validate(resp=POST_ANSWER, tags=["similar users"])
def similar_users(json: SimilarUsersRequest):
    """Similar users of one user, by one model

    Body: `{"user_handle": 999}`, optionally `"model_handle"` (default `tfidf_user_interest`),
    `"k"` (fewer neighbours) and `"explain": true` (adds `neighbours` with up to 3 reasons each).
    The answer is a list holding one object.
    """
    return _answer(json)


@bp.get("/similar-users/<user_handle>")
@api_spec.validate(resp=ANSWER, tags=["similar users"])
def similar_users_get(user_handle: str, query: SimilarUsersQuery):
    """Similar users of one user (GET convenience)

    Same answer as the POST: `GET /similar-users/999?model_handle=knn_collab_filtering_user_course_view&k=5&explain=true`.
    """
    try:
        req = SimilarUsersRequest.model_validate({"user_handle": user_handle, "model_handle": query.model_handle, "k": query.k,
                                                  "explain": query.explain == "true"})
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_message(exc)) from None
    return _answer(req)


@bp.get("/models")
@api_spec.validate(
    resp=Response(HTTP_200=(ModelsAnswer, "every registered model and the run serving it"), **error_responses(401, 503)),
    tags=["similar users"],
    validation_error_status=NO_INPUT,
)
def models():
    """The models this service answers for

    Handle, one-line description, whether it is the default, and the run that serves it (run id,
    publication time, users covered); the same registry validates `model_handle`.
    """
    return jsonify(models_answer(get_store().pointers(), get_settings().default_model))


@bp.get("/health")
@api_spec.validate(
    resp=Response(HTTP_200=(HealthBody, "the database answers and every published run's table is there"),
                  HTTP_503=(HealthBody, "the database cannot be reached (`service_unavailable`), or a published run's "
                                        "table is missing (`run_unavailable`, naming the runs)")),
    tags=["operations"],
    security={},
    validation_error_status=503,  # no request model: see openapi.NO_INPUT
)
def health():
    """Health probe (never needs an API key)

    200 when the database answers and the table of every published run is there, 503 otherwise:
    what a load balancer and a monitor need. Each server process re-checks at most every
    RUN_CHECK_SECONDS.
    """
    health = get_health()
    if health.ok:
        return jsonify(status="ok")
    if not health.reachable:
        metrics.STORE_ERRORS.labels("ping").inc()
        response = jsonify(status="unavailable", error="service_unavailable",
                           message="the similar-users database cannot be reached")
    else:
        runs = health.unavailable_runs
        response = jsonify(
            status="unavailable", error="run_unavailable",
            message="published run tables are missing: " + ", ".join(
                f"{p.table} (run {p.run_id}, model {p.model_handle})" for p in runs)
                    + "; re-run the generator or point the models back at their previous run",
            unavailable_runs=[{"model_handle": p.model_handle, "run_id": p.run_id, "table": p.table} for p in runs])
    response.status_code = 503
    return response


@bp.get("/metrics")
@api_spec.validate(
    resp=Response(HTTP_200=(None, "Prometheus text exposition format"), **error_responses(401)),
    tags=["operations"],
    validation_error_status=NO_INPUT,
)
def prometheus_metrics():
    """Prometheus metrics

    Requests by endpoint, method, status and model_handle; latency histograms; DynamoDB errors.
    Summed over all gunicorn workers when PROMETHEUS_MULTIPROC_DIR is set.
    """
    body, content_type = metrics.exposition()
    return FlaskResponse(body, content_type=content_type)
