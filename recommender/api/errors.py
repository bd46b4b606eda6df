"""Every error leaves the service as JSON ``{"error": ..., "message": ...}``, never as HTML or a trace.

Messages name the field and the reason, never an internal module, class or exception text.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from recommender.api.http import metrics
from recommender.store.dynamo import NoPublishedRun, RunUnavailable, StoreUnavailable

log = logging.getLogger(__name__)

_HTTP_ERRORS = {
    400: ("bad_request", None),
    401: ("unauthorized", None),
    404: ("not_found", "no such endpoint"),
    405: ("method_not_allowed", None),
    413: ("payload_too_large", "request body is too large"),
    415: ("unsupported_media_type", "send the body as JSON with the header Content-Type: application/json"),
}


class ApiError(Exception):
    """An error with its HTTP status and a short machine-readable code."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def error_response(status: int, error: str, message: str):
    response = jsonify(error=error, message=message)
    response.status_code = status
    return response


def validation_message(exc: ValidationError) -> str:
    """``user_handle: must be a positive integer``: the first problem, named by its field."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "body"
    if first.get("type") == "missing":
        return f"{field}: field required"
    return f"{field}: {first.get('msg', 'invalid value').removeprefix('Value error, ')}"


def spectree_before(req: Any, resp: Any, req_validation_error: Exception | None, instance: Any, model_adapter: Any) -> None:
    """spectree calls this after validating a request: turn its failure into our 400 shape.

    spectree reads a body that is not JSON, or JSON ``null``, as ``{}``; say so instead of
    complaining about a missing field.
    """
    if req_validation_error is None:
        return
    if req.method not in ("GET", "HEAD", "DELETE"):
        body = req.get_json(silent=True)
        if body is None:
            raise ApiError(400, "invalid_json", "request body is not valid JSON; send an object such as {\"user_handle\": 999}")
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_body", "request body must be a JSON object, e.g. {\"user_handle\": 999}")
    if isinstance(req_validation_error, ValidationError):
        raise ApiError(400, "invalid_request", validation_message(req_validation_error))
    raise ApiError(400, "invalid_request", "invalid request")


def spectree_after(req: Any, resp: Any, resp_validation_error: Exception | None, instance: Any, model_adapter: Any) -> None:
    """An answer that breaks its own published schema is a server bug: log it, answer a plain 500."""
    if resp_validation_error is not None:
        log.error("response does not match the published schema: %s", resp_validation_error)
        raise ApiError(500, "internal_error", "internal server error")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.error, exc.message)

    @app.errorhandler(StoreUnavailable)
    def _store_unavailable(exc: StoreUnavailable):
        metrics.STORE_ERRORS.labels("get").inc()
        log.warning("database unavailable: %s", exc)
        return error_response(503, "service_unavailable", "the similar-users database cannot be reached; try again shortly")

    @app.errorhandler(NoPublishedRun)
    def _no_published_run(exc: NoPublishedRun):
        log.warning("no published run for model %s", exc.model_handle)
        return error_response(503, "no_published_run",
                              f"no run of model_handle {exc.model_handle} is published; try again after the generator has run")

    @app.errorhandler(RunUnavailable)
    def _run_unavailable(exc: RunUnavailable):
        pointer = exc.pointer
        metrics.RUN_UNAVAILABLE_ANSWERS.labels(pointer.model_handle).inc()
        log.error("%s", exc)
        return error_response(503, "run_unavailable",
                              f"the published run of model_handle {pointer.model_handle} cannot be read; "
                              "try again after the operators have restored it")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = exc.code or 500
        name, message = _HTTP_ERRORS.get(code, (exc.name.lower().replace(" ", "_"), None))
        response = error_response(code, name, message or exc.description or exc.name)
        if getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")
