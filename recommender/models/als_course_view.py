"""``als_collab_filtering_user_course_view``: implicit-feedback matrix factorisation of view time.

The k-NN model compares users on the courses they *both* watched; with ~25 courses each out of
~6,000, two users of the same topic often share none.  Alternating least squares (Hu, Koren &
Volinsky 2008, as implemented by ``implicit``) factorises the weighted user × course matrix into
low-rank user and course factors: users who watch courses that are watched *together* end up with
close factors even without a course in common, so users are compared by the cosine of their
factors.

Confidence weighting: the same as the k-NN model (log1p of minutes, then BM25 over users, or only
the log with ``weighting="log"``), times ``alpha``.  BM25 damps long binges and heavy viewers and
lifts niche courses, which is what makes a shared course informative.

Determinism: ``implicit`` seeds its factor initialisation with ``random_state``, and its
conjugate-gradient solver is deterministic on one thread; with several OpenMP threads the order
of floating-point sums can change between runs, so ``num_threads`` defaults to 1 (fitting 10k
users takes a few seconds on one thread) and the BLAS pool is limited to one thread while fitting.
``implicit`` is imported inside :meth:`fit` only (never by the API).
"""

from __future__ import annotations

import logging
from typing import Literal, Self

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from recommender.data.loader import Tables
from recommender.features.matrices import user_item_matrix
from recommender.models.base import NOT_FITTED, SimilarityModel
from recommender.models.knn_course_view import bm25_weight
from recommender.reasons import Explanations, shared_features
from recommender.search.neighbours import Neighbours

log = logging.getLogger(__name__)

Weighting = Literal["log", "bm25"]


def view_confidence(matrix: sparse.csr_matrix, weighting: Weighting, k1: float, b: float) -> sparse.csr_matrix:
    """log1p(minutes), then BM25 over users (``weighting="bm25"``)."""
    matrix = sparse.csr_matrix(matrix, dtype=np.float64, copy=True)
    matrix.data = np.log1p(matrix.data / 60.0)
    return bm25_weight(matrix, k1, b) if weighting == "bm25" else matrix


NEGLIGIBLE_NORM = 1e-3  # of the median user's factor norm


def _drop_negligible(vectors: np.ndarray) -> np.ndarray:
    """Zero the factors of users whose confidences are all ~0 (e.g. one short view of a course that
    nearly everyone watched: BM25 gives it almost no weight).  Their factors are a rounding error,
    whose direction would make arbitrary neighbours; zeroed, such a user gets no neighbour."""
    norms = np.linalg.norm(vectors, axis=1)
    vectors[norms < NEGLIGIBLE_NORM * np.median(norms)] = 0.0
    return vectors


class AlsUserCourseView(SimilarityModel):
    #: The ensemble also reads each user's taste profile and activity (:meth:`taste`).
    fusion_state = ("vectors_", "users_", "profiles_", "activity_")
    # Chosen on the validation split (docs/evaluation/tuning.md): factors, regularisation,
    # iterations, confidence scale and weighting, one change at a time around the default.
    tuning_grid = [
        {},
        {"factors": 16},
        {"factors": 64},
        {"regularization": 0.3},
        {"regularization": 3.0},
        {"iterations": 8},
        {"iterations": 25},
        {"alpha": 0.5},
        {"alpha": 2.0},
        {"weighting": "log"},
    ]
    tuning_target = ("courses", "ndcg_at_{k}")

    def __init__(
        self,
        factors: int = 32,
        regularization: float = 1.0,
        iterations: int = 15,
        alpha: float = 1.0,
        weighting: Weighting = "bm25",
        k1: float = 1.2,
        b: float = 0.75,
        seed: int = 7,
        num_threads: int = 1,
    ) -> None:
        if weighting not in ("log", "bm25"):
            raise ValueError(f"weighting must be log or bm25, not {weighting!r}")
        if factors < 1 or iterations < 1 or regularization < 0 or alpha <= 0:
            raise ValueError("factors and iterations must be >= 1, regularization >= 0 and alpha > 0")
        self.factors, self.regularization, self.iterations, self.alpha = factors, regularization, iterations, alpha
        self.weighting, self.k1, self.b, self.seed, self.num_threads = weighting, k1, b, seed, num_threads

    def fit(self, tables: Tables) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        views = user_item_matrix(tables.user_course_views, "user_handle", "course_id", "view_time_seconds")
        confidence = view_confidence(views.matrix, self.weighting, self.k1, self.b)
        confidence.data *= self.alpha
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                iterations=self.iterations,
                calculate_training_loss=False,
                random_state=self.seed,
                num_threads=self.num_threads,
            )
            model.fit(confidence.astype(np.float32).tocsr(), show_progress=False)
        self.course_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        self.vectors_ = _drop_negligible(np.asarray(model.user_factors, dtype=np.float32))
        self.users_ = views.users
        self.courses_ = views.items
        self.confidence_ = confidence.tocsr()
        # Each user's taste profile: the confidence-weighted mean factor of the courses they watched,
        # and their activity (distinct courses): what the ensemble's affinity and activity read.
        self.profiles_ = np.asarray(normalize(self.confidence_, norm="l1") @ self.course_factors_, dtype=np.float32)
        self.activity_ = np.diff(self.confidence_.indptr).astype(np.int64)
        return self

    def taste(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(users, unit user factors, taste profiles, activity): ``factor_u · profile_v`` is the mean score
        the model predicts for ``u`` over the courses ``v`` watched (weighted by ``v``'s confidence)."""
        check_is_fitted(self, msg=NOT_FITTED)
        check_is_fitted(self, "profiles_", msg=NOT_FITTED)
        return self.users_, normalize(np.asarray(self.vectors_, dtype=np.float64)), self.profiles_, self.activity_

    def recommend_courses(self, rows: np.ndarray, seen: sparse.csr_matrix, k: int) -> np.ndarray:
        """Direct item recommendations (the evaluation's reference row, not a similar-users answer):
        the top-``k`` course indices by ``user_factor · course_factor`` for the users at ``rows``,
        courses in ``seen`` (same rows) excluded, ties by course index."""
        scores = self.vectors_[rows] @ self.course_factors_.T
        scores[seen.nonzero()] = -np.inf
        k = min(k, scores.shape[1])
        top = np.sort(np.argpartition(-scores, k - 1, axis=1)[:, :k], axis=1)
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
        return np.take_along_axis(top, order, 1)

    def explain(self, neighbours: Neighbours) -> Explanations:
        """The shared courses that weigh most in both users' confidences (factors have no names; a
        neighbour found through courses watched *together*, none of them shared, gets no reason)."""
        return shared_features(self.confidence_, self.users_, neighbours, self.courses_, "course")
