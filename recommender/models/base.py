"""The one interface every similarity model implements.

Like scikit-learn estimators (and ``implicit``'s recommender base), a model is configured in
``__init__``, learns in :meth:`fit` from the loaded tables and then answers for all users at
once.  Every model here ends in user vectors compared by cosine, so the shared
:meth:`similar_users` does the search and a model only says how its vectors are made.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar
import numpy as np
from scipy import sparse
from typing import Self

from recommender.data.loader import Tables
from recommender.topk import Neighbours, SearchOptions, top_k_cosine

if TYPE_CHECKING:
    from recommender.reasons import Explanations


class NotFittedError(RuntimeError):
    """Raised when a model is asked for answers before :meth:`SimilarityModel.fit`."""


class SimilarityModel(ABC):
    """Fit on the tables, then return every user's top-N most similar users."""

    #: Set by the registry (:meth:`ModelSpec.create`), the single place a handle is written.
    handle: str = "unregistered"
    #: ``make evaluate EVAL_ARGS=--tune``: overrides of the defaults tried on the validation split
    #: ({} is the default itself; kept small on purpose) ...
    tuning_grid: ClassVar[list[dict[str, Any]]] = [{}]
    #: ... and the (task, metric) that chooses among them.
    tuning_target: ClassVar[tuple[str, str]] = ("courses", "ndcg_at_{k}")
    #: What a model that fuses this one later reads of it (kept by ``release(keep_vectors=True)``).
    fusion_state: ClassVar[tuple[str, ...]] = ("vectors_", "users_")

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

    def release(self, *, keep_vectors: bool = False) -> None:
        """Forget the fitted state (every ``name_`` attribute) once a run is done with the model, so its
        memory goes back before the next model fits; ``keep_vectors`` keeps :meth:`user_vectors` (and the
        rest of ``fusion_state``) for a model that fuses this one later (the ensemble re-scores its
        candidates with them)."""
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            if not (keep_vectors and name in self.fusion_state):
                setattr(self, name, None)

    def similar_users(
        self, n: int = 10, *, block_mb: int = 256, progress: bool = False, search: SearchOptions | None = None
    ) -> Neighbours:
        """Top-``n`` cosine neighbours of every user, self excluded, ties by user_handle (exact unless ``search`` says)."""
        vectors, users = self.user_vectors()
        return top_k_cosine(vectors, users, n, block_mb=block_mb, progress=progress, desc=self.handle, search=search)

    def explain(self, neighbours: Neighbours) -> Explanations | None:
        """Up to 3 reasons per listed neighbour (:mod:`recommender.reasons`), computed from the fitted
        vectors in vectorised blocks; None when the model has nothing to say."""
        return None

    def _keep_params(self, params: dict[str, Any]) -> None:
        """Store every constructor argument under its own name (scikit-learn's convention), in one place."""
        for name, value in params.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def get_params(self) -> dict[str, object]:
        """Constructor parameters, for the run summary (as scikit-learn's ``get_params``)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_") and k != "handle"}
