"""The one interface every similarity model implements.

Like scikit-learn estimators (and ``implicit``'s recommender base), a model is configured in
``__init__``, learns in :meth:`fit` from the loaded tables and then answers for all users at
once.  Every model here ends in user vectors compared by cosine, so the shared
:meth:`similar_users` does the search and a model only says how its vectors are made.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from scipy import sparse
from typing import Self

from recommender.data.loader import Tables
from recommender.topk import Neighbours, top_k_cosine


class NotFittedError(RuntimeError):
    """Raised when a model is asked for answers before :meth:`SimilarityModel.fit`."""


class SimilarityModel(ABC):
    """Fit on the tables, then return every user's top-N most similar users."""

    handle: ClassVar[str]
    #: Tables the model reads; the generator loads only these.
    tables: ClassVar[tuple[str, ...]]

    def __init__(self) -> None:
        self.users_: np.ndarray | None = None
        self.vectors_: np.ndarray | sparse.csr_matrix | None = None

    @abstractmethod
    def fit(self, tables: Tables) -> Self:
        """Learn ``users_`` (ascending handles) and ``vectors_`` (one row per user)."""

    def user_vectors(self) -> tuple[np.ndarray | sparse.csr_matrix, np.ndarray]:
        """The learned (vectors, users); users with no data for this model are absent."""
        if self.vectors_ is None or self.users_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        return self.vectors_, self.users_

    def similar_users(self, n: int = 10, *, block_mb: int = 256, progress: bool = False) -> Neighbours:
        """Top-``n`` cosine neighbours of every user, self excluded, ties by user_handle."""
        vectors, users = self.user_vectors()
        return top_k_cosine(vectors, users, n, block_mb=block_mb, progress=progress, desc=self.handle)

    def get_params(self) -> dict[str, object]:
        """Constructor parameters, for the run summary (as scikit-learn's ``get_params``)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}
