"""Similarity models behind one interface; see :mod:`recommender.models.base`.

Importing this package is cheap: the registry names the models without importing them, so
the API can validate ``model_handle`` without loading TensorFlow.
"""

from recommender.models.registry import MODEL_HANDLES, create_model

__all__ = ["MODEL_HANDLES", "create_model"]
