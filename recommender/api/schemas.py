"""Request bodies, validated with pydantic so every rejection names the field and the reason."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from recommender.models.registry import MODEL_HANDLES

MAX_USER_HANDLE = 2**63 - 1  # DynamoDB numbers hold more, but nobody has more users than int64


class SimilarUsersRequest(BaseModel):
    """``{"user_handle": 999}`` or ``{"user_handle": "999", "model_handle": "DNN_..."}``."""

    model_config = ConfigDict(extra="ignore")

    user_handle: int
    model_handle: str | None = None

    @field_validator("user_handle", mode="before")
    @classmethod
    def _positive_integer(cls, value: Any) -> int:
        # Clients send ids as JSON numbers or as strings of digits; anything else is a mistake
        # (True would otherwise pass as 1, 3.0 as 3).
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError("must be a positive integer or a string of digits")
        if isinstance(value, str):
            text = value.strip()
            if not text.isascii() or not text.isdigit():
                raise ValueError("must be a positive integer or a string of digits")
            value = int(text)
        if not 0 < value <= MAX_USER_HANDLE:
            raise ValueError("must be a positive integer")
        return value

    @field_validator("model_handle", mode="before")
    @classmethod
    def _known_model(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"must be a string, one of: {', '.join(MODEL_HANDLES)}")
        handle = value.strip().lower()
        if handle not in MODEL_HANDLES:
            raise ValueError(f"unknown model_handle {value[:100]!r}; valid: {', '.join(MODEL_HANDLES)}")
        return handle
