"""Limits on what a request may be, enforced by the app whatever server runs it.

* Bodies sent chunked (no ``Content-Length``) are held to ``MAX_BODY_BYTES`` like the others:
  Werkzeug only stops reading at the limit, so an over-size chunked body used to be cut to
  ``MAX_BODY_BYTES`` bytes silently (then accepted, or refused as "not valid JSON").
* JSON nested deeper than Python's recursion limit (a 4 KB body can nest ~2,000 levels) is a
  400, not a ``RecursionError`` and a 500 with a traceback per request.
* No redirect is ever built from the client's ``Host`` header: Werkzeug's routing would answer
  ``//health`` or a missing trailing slash with a redirect to ``http://<Host>/…``; here such
  paths are simply matched or 404.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from recommender.api.errors import ApiError


class DepthSafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with a too-deeply nested document turned into our 400."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ApiError(400, "invalid_json", "request body is nested too deeply; send an object such as {\"user_handle\": 999}") from None


def read_chunked_body(environ: dict, limit: int) -> bytes:
    """The whole body of a request without ``Content-Length``, or 413 past ``limit`` bytes."""
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            chunk = stream.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except Exception:  # noqa: BLE001 - the server's chunk parser or the socket: the client's doing either way
        raise BadRequest("the chunked request body is malformed or incomplete") from None
    if size > limit:
        raise RequestEntityTooLarge()
    return b"".join(chunks)


def install(app: Flask) -> None:
    """Before any blueprint is registered (the URL map settings apply to rules added later)."""
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.json = DepthSafeJSONProvider(app)
    app.json.sort_keys = False

    @app.before_request
    def _bounded_chunked_body() -> None:
        environ = request.environ
        if environ.get("CONTENT_LENGTH") or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return
        body = read_chunked_body(environ, app.config["MAX_CONTENT_LENGTH"])
        # From here on the body is an ordinary one with a length (nothing has read the stream yet).
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
