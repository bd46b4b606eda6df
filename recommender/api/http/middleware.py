"""What happens around every request: request id, API key, JSON-only bodies, security headers,
one access-log line and the Prometheus metrics.

Order on the way in: request id and clock first (so even a refused request is logged and
counted), then the API key (401; only for requests that matched a route and method, so the
others get their 404/405), then the content type of a body (415).  On the way out every
response, errors included, gets the security headers, ``X-Request-ID``, a log line and metrics.

Which endpoints need no key and which Content-Security-Policy a blueprint's answers carry is
declared by each blueprint (:func:`declare`, when it is registered), so this module knows no
blueprint.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, field

from flask import Flask, g, request

from recommender.api.errors import ApiError
from recommender.api.http import metrics
from recommender.api.http.request_ids import REQUEST_ID_HEADER, request_id_from

access_log = logging.getLogger("recommender.api.access")

API_KEY_HEADER = "X-API-Key"
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

# JSON answers load nothing and may not be framed; the docs page loads Swagger UI from this
# origin only, plus its own inline script (by nonce), and calls this origin.
CSP_API = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
CSP_DOCS = (
    "default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# The explorer's pages: their own script, style and inline SVG only; the user form submits here.
CSP_EXPLORE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def security_headers(csp: str = CSP_API) -> dict[str, str]:
    """The headers on every answer, the app's and gunicorn's own errors (``gunicorn_worker.py``) alike."""
    return {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Content-Security-Policy": csp,
    }


_API_HEADERS = tuple(security_headers().items())
_POLICY = "similar_users_http_policy"


@dataclass
class Policy:
    """What the blueprints of one app declared: endpoints open without a key, and the
    Content-Security-Policy of each blueprint whose answers replace the JSON one."""

    open_endpoints: set[str] = field(default_factory=set)
    csp: dict[str, str] = field(default_factory=dict)


def _policy(app: Flask) -> Policy:
    return app.extensions.setdefault(_POLICY, Policy())


def declare(app: Flask, blueprint: str, *, open_endpoints: tuple[str, ...] = (), csp: str | None = None) -> None:
    """``blueprint``'s part of the policy (call it from the blueprint's ``record_once``):
    ``open_endpoints`` (its view names) answer without an API key, and its answers carry
    ``csp`` (all their security headers replaced: a file may come with its own Cache-Control)."""
    policy = _policy(app)
    policy.open_endpoints.update(f"{blueprint}.{name}" for name in open_endpoints)
    if csp is not None:
        policy.csp[blueprint] = csp


def key_is_valid(candidate: str, keys: tuple[str, ...]) -> bool:
    """Constant-time comparison against every key (no early exit that would tell which one)."""
    given = candidate.encode("utf-8", "surrogateescape")
    valid = False
    for key in keys:
        valid |= hmac.compare_digest(given, key.encode("utf-8"))
    return valid


def _printable(text: str, limit: int = 200) -> str:
    """A path fit for a log line: no newlines or control characters, bounded length."""
    text = text[:limit]
    return text if text.isprintable() else "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def install(app: Flask, api_keys: tuple[str, ...]) -> None:
    """The hooks around every request of ``app``; ``api_keys`` empty: no key is asked for."""
    policy = _policy(app)

    # Each hook takes the request and ``g`` out of their context proxies once: every attribute read
    # through a proxy is a context look-up, and these two hooks made ~20 of them per request.
    @app.before_request
    def _start():
        req, ctx = request._get_current_object(), g._get_current_object()
        ctx.started = time.perf_counter()
        header = req.headers.get(REQUEST_ID_HEADER)
        ctx.request_id = request_id_from(header)
        # A client's id correlates log lines and nothing else: it never keys stored records
        # (``ab.expose`` makes its own for an exposure unless this one is ours).
        ctx.request_id_is_ours = ctx.request_id != header
        # A request that matched no route (404) or no method (405) gets that answer, key or not:
        # POST /health is 405 like without keys, and reveals nothing the 401 would hide.
        if api_keys and req.routing_exception is None and req.endpoint not in policy.open_endpoints:
            if not key_is_valid(req.headers.get(API_KEY_HEADER, ""), api_keys):
                raise ApiError(401, "unauthorized", f"a valid {API_KEY_HEADER} header is required")
        if req.method in _BODY_METHODS and req.url_rule is not None and not req.is_json:
            raise ApiError(415, "unsupported_media_type", "send the body as JSON with the header Content-Type: application/json")

    @app.after_request
    def _finish(response):
        req, ctx = request._get_current_object(), g._get_current_object()
        headers = response.headers
        nonce = ctx.get("csp_nonce")
        csp = policy.csp.get(req.blueprint) if req.blueprint else None
        if nonce:  # a page with its own inline script (/docs)
            headers.update(security_headers(CSP_DOCS.format(nonce=nonce)))
        elif csp is not None:
            headers.update(security_headers(csp))
        else:  # a JSON answer has none of them yet: appending is a third of the cost of replacing
            headers.extend(_API_HEADERS)
        request_id = ctx.get("request_id") or request_id_from(None)
        headers[REQUEST_ID_HEADER] = request_id

        started = ctx.get("started")
        seconds = time.perf_counter() - started if started is not None else 0.0
        endpoint = req.url_rule.rule if req.url_rule is not None else "unmatched"
        model_handle = ctx.get("model_handle") or "none"
        method = req.method if req.method in _METHODS else "OTHER"  # bounded label values
        status = response.status_code
        metrics.observe(endpoint, method, status, model_handle, seconds)
        # Method, path (never the query string or headers: no key ends up in a log), status, time.
        duration_ms = round(seconds * 1000, 2)
        path = _printable(req.path)
        extra = {"method": method, "path": path, "status": status, "duration_ms": duration_ms,
                 "model_handle": model_handle, "request_id": request_id}
        exposure = ctx.get("exposure_request_id")
        if exposure is None:
            access_log.info("%s %s %s %.2fms model_handle=%s", method, path, status, duration_ms, model_handle,
                            extra=extra)
        else:  # the id feedback will name, when it is not the X-Request-ID (a client's)
            extra["exposure_request_id"] = exposure
            access_log.info("%s %s %s %.2fms model_handle=%s exposure_request_id=%s", method, path, status,
                            duration_ms, model_handle, exposure, extra=extra)
        return response
