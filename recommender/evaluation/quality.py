"""Each model's offline quality as the explorer page shows it, from an evaluation results file.

Read by the API (``EVALUATION_RESULTS_FILE``) and checked by gunicorn's master before it forks,
so this module imports only pydantic, the standard library and the model registry (no AWS library).

The part of the file the explorer reads is declared as pydantic models and validated whole at
start: a figure that is not a number in 0..1 (``"0.41"``, ``true``, ``NaN``), a model entry that
is not an object, stops the start with one line naming it, rather than passing the start and
failing every ``/explore`` page later.  What the explorer does not read is not checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recommender.models.registry import MODELS

#: A figure of the file: a JSON number (not a string, not a boolean) within 0..1, or null.
Figure = Annotated[float | None, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CourseFigures(_Read):
    ndcg_at_10: Figure = None


class PlantedFigures(_Read):
    community_precision_at_10: Figure = None


class CourseTask(_Read):
    metrics: dict[str, CourseFigures]


class Tasks(_Read):
    courses: CourseTask


class Planted(_Read):
    metrics: dict[str, PlantedFigures] = {}


class EvaluationResults(_Read):
    """What the explorer reads of ``docs/evaluation/results.json`` (``make evaluate`` writes it)."""

    tasks: Tasks
    planted: Planted = Planted()


@dataclass(frozen=True)
class Quality:
    """A model's course NDCG@10 (held-out views) and planted-community precision@10."""

    course_ndcg_at_10: float | None
    community_precision_at_10: float | None


def load_quality(path: Path | None) -> dict[str, Quality]:
    """Per-model course NDCG@10 and planted-community precision@10 from an evaluation results file.

    Raises ``ValueError`` naming the file (and the value, when one is wrong) when it cannot be read
    or is not such a file: the service refuses to start on it, as on any bad setting.
    """
    if path is None:
        return {}
    try:
        results = EvaluationResults.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        raise ValueError(f"evaluation results file {path}: {exc.strerror or exc.__class__.__name__}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ValueError(f"evaluation results file {path}: not JSON ({first['ctx']['error']})") from None
        where = ".".join(str(part) for part in first.get("loc", ())) or "the document"
        value = first.get("input")
        got = "" if isinstance(value, (dict, list)) or first["type"] == "missing" else f", got {value!r}"
        raise ValueError(f"evaluation results file {path}: {where}: {first['msg']}{got}") from None
    courses, planted = results.tasks.courses.metrics, results.planted.metrics
    empty_course, empty_planted = CourseFigures(), PlantedFigures()
    return {
        spec.handle: Quality(courses.get(spec.handle, empty_course).ndcg_at_10,
                             planted.get(spec.handle, empty_planted).community_precision_at_10)
        for spec in MODELS if spec.handle in courses or spec.handle in planted
    }
