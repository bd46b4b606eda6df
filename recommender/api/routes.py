"""HTTP routes: the original ``POST /similar-users/`` contract and a health probe."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from pydantic import ValidationError

from recommender.api.errors import ApiError
from recommender.api.schemas import SimilarUsersRequest

bp = Blueprint("similar_users", __name__)


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "body"
    if first.get("type") == "missing":
        return f"{field}: field required"
    return f"{field}: {first.get('msg', 'invalid value').removeprefix('Value error, ')}"


@bp.route("/similar-users/", methods=["POST"], strict_slashes=False)
def similar_users():
    """Answer from the stored neighbour lists; the response shape is the original spec's list."""
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise ApiError(400, "invalid_json", "request body is not valid JSON; send an object such as {\"user_handle\": 999}")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "request body must be a JSON object, e.g. {\"user_handle\": 999}")
    try:
        req = SimilarUsersRequest.model_validate(body)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", _validation_message(exc)) from None
    model_handle = req.model_handle or current_app.config["DEFAULT_MODEL"]
    item = current_app.extensions["similar_users_store"].get(req.user_handle, model_handle)
    if item is None:
        raise ApiError(404, "not_found", f"no similar users stored for user_handle {req.user_handle} and model_handle {model_handle}")
    return jsonify(
        [
            {
                "model_handle": model_handle,
                "similar_users": item["similar_users"],
                "user_handle": req.user_handle,
                "scores": item.get("scores", []),
                "generated_at": item.get("generated_at"),
            }
        ]
    )


@bp.get("/health")
def health():
    """200 when the table answers, 503 otherwise: what a load balancer needs to route around us."""
    if current_app.extensions["similar_users_store"].ping():
        return jsonify(status="ok")
    response = jsonify(status="unavailable", error="service_unavailable", message="the similar-users database cannot be reached")
    response.status_code = 503
    return response
