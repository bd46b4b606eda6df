"""The one interface every similarity model implements.

A model is a scikit-learn estimator: its constructor only stores its arguments as given
(``get_params``/``set_params`` and ``clone`` come from :class:`~sklearn.base.BaseEstimator`), it
learns in :meth:`fit` from the loaded tables, and its fitted state is the attributes ending in
``_`` (:func:`~sklearn.utils.validation.check_is_fitted`).  Every model here ends in user vectors
compared by cosine: a model only says how its vectors are made; searching every user's
neighbours among them is the search's job (:func:`recommender.topk.similar_users`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from recommender.data.loader import Tables

if TYPE_CHECKING:
    from recommender.reasons import Explanations
    from recommender.search.neighbours import Neighbours

#: What a model asked for answers before :meth:`SimilarityModel.fit` says (sklearn's ``NotFittedError``).
NOT_FITTED = "%(name)s is not fitted; call fit() first"


class SimilarityModel(BaseEstimator, ABC):
    """Fit on the tables; then its user vectors (and reasons) for every user it has data for."""

    #: ``make evaluate EVAL_ARGS=--tune``: overrides of the defaults tried on the validation split
    #: ({} is the default itself; kept small on purpose) ...
    tuning_grid: ClassVar[list[dict[str, Any]]] = [{}]
    #: ... and the (task, metric) that chooses among them.
    tuning_target: ClassVar[tuple[str, str]] = ("courses", "ndcg_at_{k}")
    #: What a model that fuses this one later reads of it (kept by ``release(keep_vectors=True)``).
    fusion_state: ClassVar[tuple[str, ...]] = ("vectors_", "users_")

    @abstractmethod
    def fit(self, tables: Tables) -> Self:
        """Learn ``users_`` (ascending handles) and ``vectors_`` (one row per user)."""

    def user_vectors(self) -> tuple[np.ndarray | sparse.csr_matrix, np.ndarray]:
        """The learned (vectors, users); users with no data for this model are absent."""
        check_is_fitted(self, msg=NOT_FITTED)
        return self.vectors_, self.users_

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted while it has vectors (:meth:`release` sets them to None)."""
        return getattr(self, "vectors_", None) is not None and getattr(self, "users_", None) is not None

    def release(self, *, keep_vectors: bool = False) -> None:
        """Forget the fitted state (every ``name_`` attribute) once a run is done with the model, so its
        memory goes back before the next model fits; ``keep_vectors`` keeps :meth:`user_vectors` (and the
        rest of ``fusion_state``) for a model that fuses this one later (the ensemble re-scores its
        candidates with them)."""
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            if not (keep_vectors and name in self.fusion_state):
                setattr(self, name, None)

    def explain(self, neighbours: Neighbours) -> Explanations | None:
        """Up to 3 reasons per listed neighbour (:mod:`recommender.reasons`), computed from the fitted
        vectors in vectorised blocks; None when the model has nothing to say."""
        return None
