"""Model handles and where each model lives, resolved lazily.

The service imports this module to list and validate handles; only the generator calls
:func:`create_model`, which imports the model's module (and, for the DNN, TensorFlow).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recommender.models.base import SimilarityModel

_MODELS: dict[str, str] = {
    "tfidf_user_interest": "recommender.models.tfidf_interest:TfidfUserInterest",
    "knn_collab_filtering_user_course_view": "recommender.models.knn_course_view:KnnUserCourseView",
    "dnn_collab_filtering_user_course_level": "recommender.models.dnn_course_level:DnnUserCourseLevel",
}

MODEL_HANDLES: tuple[str, ...] = tuple(_MODELS)


def create_model(handle: str, **params: Any) -> SimilarityModel:
    """Instantiate the model registered as ``handle`` with its keyword parameters."""
    try:
        target = _MODELS[handle]
    except KeyError:
        raise ValueError(f"unknown model {handle!r}; known models: {', '.join(MODEL_HANDLES)}") from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**params)
