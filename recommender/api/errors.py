"""Every error leaves the service as JSON ``{"error": ..., "message": ...}``, never as HTML or a trace."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from recommender.store.dynamo import StoreUnavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with its HTTP status and a short machine-readable code."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def error_response(status: int, error: str, message: str):
    response = jsonify(error=error, message=message)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.error, exc.message)

    @app.errorhandler(StoreUnavailable)
    def _store_unavailable(exc: StoreUnavailable):
        log.warning("database unavailable: %s", exc)
        return error_response(503, "service_unavailable", "the similar-users database cannot be reached; try again shortly")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = exc.code or 500
        names = {413: "payload_too_large", 404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        message = {
            413: "request body is too large",
            404: "no such endpoint",
        }.get(code, exc.description or exc.name)
        response = error_response(code, names.get(code, exc.name.lower().replace(" ", "_")), message)
        if getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")
