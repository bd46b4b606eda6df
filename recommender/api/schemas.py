"""Request and response models (pydantic).

They do two jobs from one definition: spectree validates every request against them, and the
OpenAPI document (``/openapi.json``) is generated from them.  Where a field accepts more than
pydantic's plain type says (``user_handle`` as a JSON integer *or* a string of digits,
``model_handle`` in any case), the field carries an explicit JSON schema that states exactly
what the validator accepts, so the published contract and the running code agree (the
schemathesis test checks that they do).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from recommender.data.schema import MAX_USER_HANDLE  # the loader's bound: the API accepts every loaded handle
from recommender.models.registry import MODEL_HANDLES

MAX_K = 100


def digits_at_most(limit: int) -> str:
    """A regular expression for the canonical decimal numerals from 1 to ``limit``.

    Canonical: ASCII digits only, no sign, no spaces, no leading zeros.  Exact at the top, so the
    published pattern accepts exactly the strings the validator accepts (``9223372036854775807``
    yes, ``9223372036854775808`` no): numerals shorter than ``limit``'s, or as long and, at the first
    digit where they differ, smaller.
    """
    top = str(limit)
    alternatives = [f"[1-9][0-9]{{0,{len(top) - 2}}}"] if len(top) > 1 else []
    for i, digit in enumerate(top):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            alternatives.append(f"{top[:i]}[{low}-{int(digit) - 1}][0-9]{{{len(top) - i - 1}}}")
    alternatives.append(top)
    return "^(?:" + "|".join(alternatives) + ")$"


# A user handle written as a string is the same number a JSON integer may be, written the one
# canonical way: "42" (not " 42", "042", "+42" or "٤٢"), from 1 to MAX_USER_HANDLE.
USER_HANDLE_PATTERN = digits_at_most(MAX_USER_HANDLE)
_USER_HANDLE_RE = re.compile(USER_HANDLE_PATTERN)
_K_QUERY_RE = re.compile(r"^[0-9]{1,3}$")

USER_HANDLE_SCHEMA: dict[str, Any] = {
    "description": f"the user's id: a JSON integer from 1 to {MAX_USER_HANDLE}, or the same number as a string "
                   "of digits (\"999\"; no sign, spaces or leading zeros)",
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_USER_HANDLE},
        {"type": "string", "pattern": USER_HANDLE_PATTERN},
    ],
    "examples": [999],
}
MODEL_HANDLE_DESCRIPTION = "similarity model (case-insensitive); the service's DEFAULT_MODEL when omitted"
K_DESCRIPTION = f"return only the first k neighbours (1..{MAX_K}); all stored neighbours when omitted"
_HANDLE_RULE = f"must be a positive integer no greater than {MAX_USER_HANDLE}, or the same number as a string of digits"


def parse_user_handle(value: Any) -> int:
    """One rule for JSON integers and strings: 1..MAX_USER_HANDLE, a string written canonically."""
    # (True would otherwise pass as 1, 3.0 as 3.)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(_HANDLE_RULE)
    if isinstance(value, str):
        if not _USER_HANDLE_RE.fullmatch(value):
            raise ValueError(f"{_HANDLE_RULE} (no sign, spaces or leading zeros)")
        return int(value)
    if not 1 <= value <= MAX_USER_HANDLE:
        raise ValueError(_HANDLE_RULE)
    return value


def parse_model_handle(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a string, one of: {', '.join(MODEL_HANDLES)}")
    handle = value.strip().lower()
    if handle not in MODEL_HANDLES:
        raise ValueError(f"unknown model_handle {value[:100]!r}; valid: {', '.join(MODEL_HANDLES)}")
    return handle


def check_k(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise ValueError(f"must be an integer from 1 to {MAX_K}")
    return value


EXPLAIN_DESCRIPTION = "true: add `neighbours`, each with its score and up to 3 reasons (cut by k like the lists)"


def check_explain(value: Any) -> bool:
    # A JSON boolean only: "yes" or 1 would be a guess.
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


class SimilarUsersRequest(BaseModel):
    """``{"user_handle": 999}`` or ``{"user_handle": "999", "model_handle": "DNN_...", "k": 5}``."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{"user_handle": 999}]})

    user_handle: Annotated[int, BeforeValidator(parse_user_handle), WithJsonSchema(USER_HANDLE_SCHEMA)]
    model_handle: Annotated[
        str | None,
        BeforeValidator(parse_model_handle),
        WithJsonSchema({
            "description": MODEL_HANDLE_DESCRIPTION,
            "anyOf": [{"type": "string", "enum": list(MODEL_HANDLES)}, {"type": "null"}],
        }),
    ] = None
    k: Annotated[
        int | None,
        BeforeValidator(check_k),
        WithJsonSchema({
            "description": K_DESCRIPTION,
            "anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_K}, {"type": "null"}],
        }),
    ] = None
    explain: Annotated[
        bool,
        BeforeValidator(check_explain),
        WithJsonSchema({"description": EXPLAIN_DESCRIPTION, "anyOf": [{"type": "boolean"}, {"type": "null"}]}),
    ] = False


def _no_default(schema: dict[str, Any]) -> None:
    # A query parameter is absent or text; "default": null would contradict its own schema.
    schema.pop("default", None)


class SimilarUsersQuery(BaseModel):
    """Query string of ``GET /similar-users/<user_handle>``: ``?model_handle=...&k=5``."""

    model_config = ConfigDict(extra="ignore")

    model_handle: Annotated[
        str | None,
        BeforeValidator(parse_model_handle),
        WithJsonSchema({"type": "string", "enum": list(MODEL_HANDLES), "description": MODEL_HANDLE_DESCRIPTION}),
    ] = Field(None, json_schema_extra=_no_default)
    k: Annotated[
        int | None,
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_K, "description": K_DESCRIPTION}),
    ] = Field(None, json_schema_extra=_no_default)

    explain: Annotated[
        str | None,
        WithJsonSchema({"type": "string", "enum": ["true", "false"], "description": EXPLAIN_DESCRIPTION}),
    ] = Field(None, json_schema_extra=_no_default)

    @field_validator("explain", mode="before")
    @classmethod
    def _explain_from_text(cls, value: Any) -> str | None:
        if value is not None and value not in ("true", "false"):
            raise ValueError("must be true or false")
        return value

    @field_validator("k", mode="before")
    @classmethod
    def _k_from_text(cls, value: Any) -> int | None:
        # Query values are text: "5" is 5; "5.0", "+5", " 5" and "five" are not integers.
        if isinstance(value, str):
            if not _K_QUERY_RE.fullmatch(value):
                raise ValueError(f"must be an integer from 1 to {MAX_K}")
            value = int(value)
        return check_k(value)


class ReasonOut(BaseModel):
    """``{"kind": "tag", "value": "python", "weight": 0.31, "text": "both follow python"}``."""

    kind: Literal["tag", "course", "assessment", "model", "level"] = Field(description="what the two users share")
    value: str = Field(description="the shared tag, course, assessment tag, agreeing model or course level")
    weight: float = Field(description="its part of the similarity (tag/course/assessment: term of the cosine; "
                                      "model: share of the fused score; level: overlap of the level mixes)")
    text: str = Field(description="the same, for people")


class NeighbourOut(BaseModel):
    user_handle: int
    score: float
    reasons: list[ReasonOut] = Field(description="up to 3, strongest first; empty when the model has none")


class SimilarUsersAnswer(BaseModel):
    """One answer object; the response is a JSON list holding exactly one of these."""

    model_handle: Literal[MODEL_HANDLES] = Field(description="the model that produced the list")  # type: ignore[valid-type]
    similar_users: list[int] = Field(description="neighbours' user handles, most similar first")
    user_handle: int = Field(description="the user asked about")
    scores: list[float] = Field(description="cosine similarity of each neighbour, same order")
    generated_at: str | None = Field(description="when the batch run that wrote the list started (UTC, ISO 8601)")
    experiment: str | None = Field(
        None, description="only inside an A/B experiment (no model_handle asked): the experiment's name")
    variant: str | None = Field(
        None, description="only inside an experiment: the user's arm, or `fallback` when the arm's model had no row "
                          "for the user and the default model answered")
    request_id: str | None = Field(
        None, description="only inside an experiment: this answer's id (also the X-Request-ID header), for POST /feedback")
    neighbours: list[NeighbourOut] | None = Field(
        None, description="only with explain=true: the same neighbours as objects with their reasons")


class ModelInfo(BaseModel):
    """One registered model and the run that serves it (``GET /models``)."""

    model_handle: Literal[MODEL_HANDLES] = Field(description="the handle to pass as model_handle")  # type: ignore[valid-type]
    description: str = Field(description="what the model finds, in one line")
    default: bool = Field(description="used when a request names no model_handle")
    published: bool = Field(description="a complete run serves this model (false: answers are 404 until one does)")
    run_id: str | None = Field(description="the generator run serving the model (UTC start time + suffix)")
    published_at: str | None = Field(description="when that run was published (UTC, ISO 8601)")
    users_covered: int | None = Field(description="users with a stored neighbour list in that run")


class ModelsAnswer(BaseModel):
    models: list[ModelInfo] = Field(description="every registered model, in registry order")


class ErrorBody(BaseModel):
    """Every error: ``{"error": "<short code>", "message": "<what to fix>"}``."""

    error: str = Field(examples=["invalid_request"])
    message: str = Field(examples=["user_handle: must be a positive integer"])


class UnavailableRun(BaseModel):
    model_handle: str
    run_id: str
    table: str


class HealthBody(BaseModel):
    status: Literal["ok", "unavailable"]
    error: str | None = None
    message: str | None = None
    unavailable_runs: list[UnavailableRun] | None = Field(
        None, description="with `run_unavailable`: the published runs whose table is missing")


# The request ids the service hands out or keeps (``request_ids.request_id_from``).
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,64}$"
FEEDBACK_EVENTS = ("click", "follow", "dismiss")


class FeedbackRequest(BaseModel):
    """``{"request_id": "…", "user_handle": 999, "similar_user_handle": 4254, "event": "click"}``."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [
        {"request_id": "9f1c2b7e0a4d4c1e8b6f3a2d5c7e9b10", "user_handle": 999, "similar_user_handle": 4254, "event": "click"}]})

    request_id: str = Field(pattern=REQUEST_ID_PATTERN, description="the request id of the answer that showed the neighbour")
    user_handle: Annotated[int, BeforeValidator(parse_user_handle), WithJsonSchema(USER_HANDLE_SCHEMA)]
    similar_user_handle: Annotated[int, BeforeValidator(parse_user_handle), WithJsonSchema(
        {**USER_HANDLE_SCHEMA, "description": "the neighbour the event is about (one the answer showed)"})]
    event: Literal[FEEDBACK_EVENTS] = Field(description="what the user did: click, follow or dismiss")  # type: ignore[valid-type]


class FeedbackAccepted(BaseModel):
    status: Literal["accepted"]
    experiment: str
    variant: str
