"""Limits on what a request may be, enforced by the app whatever server runs it.

* A body is read whole, within ``MAX_BODY_BYTES``, before anything else of the request runs
  (:func:`buffer_body`, called by ``shedding.py`` before the request takes its in-flight slot),
  whether it comes with a ``Content-Length`` or chunked: a client that dribbles its body then
  holds a connection, never a slot.  Bodies sent chunked are held to ``MAX_BODY_BYTES`` like the
  others (Werkzeug only stops reading at the limit, so an over-size chunked body used to be cut to
  ``MAX_BODY_BYTES`` bytes silently, then accepted or refused as "not valid JSON"): 413 past it.
  A body that stops short or is malformed is a 400.  These answers come from the app (its JSON
  errors, access-log line and metrics), without a slot.
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
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from recommender.api.errors import ApiError


class DepthSafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with a too-deeply nested document turned into our 400."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ApiError(400, "invalid_json", "request body is nested too deeply; send an object such as {\"user_handle\": 999}") from None


#: Where :func:`buffer_body` leaves the error of a body it could not read, for the app to answer.
BODY_ERROR = "recommender.body_error"


def buffer_body(environ: dict, limit: int) -> None:
    """Read the request's body into memory (a declared ``Content-Length`` up to ``limit``, or a
    chunked body up to ``limit``), so that nothing after this waits on the client.

    A body that cannot be read whole (short, malformed, a chunked one past ``limit``) is left
    under :data:`BODY_ERROR` as the HTTP error the app raises for it; a declared length past ``limit`` is left to
    Flask's ``MAX_CONTENT_LENGTH`` (413 without reading it), a malformed one to the app.
    """
    try:
        body = _read_whole(environ, limit)
    except HTTPException as exc:
        environ[BODY_ERROR] = exc
        return
    if body is not None:  # from here on an ordinary body with its length, whatever the server
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)


def _read_whole(environ: dict, limit: int) -> bytes | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length:
        if length > limit:
            return None
        try:
            body = environ["wsgi.input"].read(length)
        except Exception:  # noqa: BLE001 - the socket or the server's reader: the client's doing either way
            body = b""
        if len(body) < length:
            raise BadRequest("the request body is incomplete")
        return body
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
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
    def _body_error() -> None:
        error = request.environ.get(BODY_ERROR)
        if error is not None:
            raise error
