"""``GET /models``: the registry (what the service validates ``model_handle`` against) joined with
the control table's pointers (what is published), so a client discovers both from one source."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from recommender.models.registry import MODELS
from recommender.store.control import Pointer


def models_answer(pointers: list[Pointer], default_model: str) -> dict[str, Any]:
    """``{"models": [...]}``: every registered model in registry order; pointers of handles that are
    no longer registered (a model removed since its last run) are not listed, as they are not served."""
    by_handle = {p.model_handle: p for p in pointers}
    models = []
    for spec in MODELS:
        pointer = by_handle.get(spec.handle)
        models.append({
            "model_handle": spec.handle,
            "description": spec.description,
            "default": spec.handle == default_model,
            "published": pointer is not None,
            "run_id": pointer.run_id if pointer else None,
            "published_at": _iso(pointer.published_at) if pointer and pointer.published_at else None,
            "users_covered": pointer.items if pointer else None,
        })
    return {"models": models}


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
