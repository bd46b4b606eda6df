"""Each model's offline quality as the explorer page shows it, from an evaluation results file.

Read by the API (``EVALUATION_RESULTS_FILE``) and checked by gunicorn's master before it forks,
so this module imports only the standard library and the model registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from recommender.models.registry import MODELS


@dataclass(frozen=True)
class Quality:
    """A model's course NDCG@10 (held-out views) and planted-community precision@10."""

    course_ndcg_at_10: float | None
    community_precision_at_10: float | None


def load_quality(path: Path | None) -> dict[str, Quality]:
    """Per-model course NDCG@10 and planted-community precision@10 from an evaluation results file.

    Raises ``ValueError`` naming the file when it cannot be read or is not such a file: the
    service refuses to start on it, as on any bad setting.
    """
    if path is None:
        return {}
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
        ndcg = results["tasks"]["courses"]["metrics"]
        planted = results.get("planted", {}).get("metrics", {})
        if not (isinstance(ndcg, dict) and isinstance(planted, dict)):
            raise TypeError("metrics are not objects")
        return {
            spec.handle: Quality(ndcg.get(spec.handle, {}).get("ndcg_at_10"),
                                 planted.get(spec.handle, {}).get("community_precision_at_10"))
            for spec in MODELS if spec.handle in ndcg or spec.handle in planted
        }
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"not an evaluation results file ({exc.__class__.__name__})"
        raise ValueError(f"evaluation results file {path}: {reason}") from None
