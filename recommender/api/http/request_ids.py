"""Request ids: the one a client may send (kept for log correlation only) and the ones the server makes.

Its own module because the middleware, the shedding's refusals, gunicorn's own errors and the
experiments code (which keys exposures by an id the server made) all need it.
"""

from __future__ import annotations

import re
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept, for log correlation only, when it is short and plain; anything else is
# replaced by a fresh one (it goes into logs and headers, so no spaces, quotes or control characters).
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(header: str | None) -> str:
    if header and _REQUEST_ID_RE.fullmatch(header):
        return header
    return new_request_id()
