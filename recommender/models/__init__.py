"""Similarity models behind one interface; see :mod:`recommender.models.base`.

Importing this package is cheap: the registry names the models without importing them, so
the API can validate ``model_handle`` without loading TensorFlow.
"""

from recommender.models.registry import MODEL_HANDLES, MODELS, ModelSpec, create_model, get_spec

__all__ = ["MODELS", "MODEL_HANDLES", "ModelSpec", "create_model", "get_spec"]
