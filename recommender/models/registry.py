"""The one list of models: handle, where the class lives, the tables it reads, what it finds.

Adding a model is one new module plus one line here; every other list of handles (the
generator's ``--models``, the API's validation and OpenAPI enum, the evaluation, the tests, the
benchmarks, the diagram) is derived from :data:`MODELS`.

Entries name their class by import path so that the service can list and validate handles
without importing any model: :meth:`ModelSpec.create` imports the module (and, for the DNN,
TensorFlow) only in the generator and the evaluation.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recommender.models.base import SimilarityModel


@dataclass(frozen=True)
class ModelSpec:
    handle: str
    target: str  # "package.module:ClassName"
    tables: tuple[str, ...]  # the generator and the evaluation load only these
    description: str  # one line, shown by the API and the docs
    #: Fuses the lists the other models of the same run computed (no vectors, no search of its own):
    #: the generator runs it after them, searches its components to its ``depth`` and fuses on the
    #: driver; run alone it fits and searches its components itself.  Such a class has ``combine``
    #: and ``components``.
    fuses: bool = False

    def load(self) -> type[SimilarityModel]:
        module_name, class_name = self.target.split(":")
        return getattr(importlib.import_module(module_name), class_name)

    def create(self, **params: Any) -> SimilarityModel:
        """An unfitted model with ``params`` (unknown names are refused, naming the model)."""
        cls = self.load()
        check_params(self.handle, params, cls)
        return cls(**params)


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("tfidf_user_interest", "recommender.models.tfidf_interest:TfidfUserInterest",
              ("user_interests",), "TF-IDF cosine of the users' interest tags: users who follow the same (rare) topics"),
    ModelSpec("knn_collab_filtering_user_course_view", "recommender.models.knn_course_view:KnnUserCourseView",
              ("user_course_views",), "BM25-weighted view time per course, cosine: users who watch the same courses"),
    ModelSpec("dnn_collab_filtering_user_course_level", "recommender.models.dnn_course_level:DnnUserCourseLevel",
              ("user_course_views",), "Keras user embeddings trained to predict course level: users of the same skill level"),
    ModelSpec("als_collab_filtering_user_course_view", "recommender.models.als_course_view:AlsUserCourseView",
              ("user_course_views",), "ALS factors of BM25-weighted view time (implicit), cosine: users of the same viewing taste"),
    ModelSpec("knn_collab_filtering_user_assessment_score", "recommender.models.knn_assessment_score:KnnUserAssessmentScore",
              ("user_assessment_scores", "user_interests"),
              "Assessment scores as within-tag percentiles plus the TF-IDF interests, cosine: takers who took related assessments at a similar level and follow the same topics"),
    ModelSpec("ensemble_user_similarity", "recommender.models.ensemble:EnsembleUserSimilarity",
              ("user_assessment_scores", "user_course_views", "user_interests"),
              "The other models' candidates scored on their cosines, the ALS taste affinity and the candidate's activity: users whose courses the user would watch next", fuses=True),
)

MODEL_HANDLES: tuple[str, ...] = tuple(spec.handle for spec in MODELS)
DEFAULT_MODEL = MODEL_HANDLES[0]
_BY_HANDLE = {spec.handle: spec for spec in MODELS}


class UnknownModel(ValueError):
    """A handle that is not registered; the message lists the valid ones."""


def get_spec(handle: str) -> ModelSpec:
    try:
        return _BY_HANDLE[handle]
    except KeyError:
        raise UnknownModel(f"unknown model {handle!r}; known models: {', '.join(MODEL_HANDLES)}") from None


def create_model(handle: str, **params: Any) -> SimilarityModel:
    """Instantiate the model registered as ``handle`` with its keyword parameters."""
    return get_spec(handle).create(**params)


def run_order(handles: tuple[str, ...] | list[str]) -> list[str]:
    """``handles`` in the order a run computes them: the models that fuse others last (stable otherwise)."""
    return sorted(handles, key=lambda handle: get_spec(handle).fuses)


def tables_for(handles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The tables the given models read, in a stable order."""
    return tuple(sorted({table for handle in handles for table in get_spec(handle).tables}))


def check_params(handle: str, params: dict[str, Any], cls: type | None = None) -> None:
    """Refuse parameter names the model's constructor does not take (a typo in configuration)."""
    cls = cls or get_spec(handle).load()
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"model {handle}: unknown parameter {unknown[0]!r}; accepted: {', '.join(accepted)}")
