"""``knn_collab_filtering_user_course_view``: user-based collaborative filtering on view time.

The user × course matrix holds each user's total view time per course (all sessions summed).
Raw seconds let one binge dominate a user's vector, so the default weighting is BM25 (as in
``implicit.nearest_neighbours.bm25_weight``): log-damped time, saturated per user by K1 and
normalised by how much the user watches overall (B), times the course's IDF, so that sharing a
niche course counts more than sharing the most popular one.  ``weighting="log"`` (log1p of
minutes) and ``"raw"`` are kept for comparison in the evaluation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import sparse
from typing import Self

from recommender.data.loader import Tables
from recommender.features.matrices import user_item_matrix
from recommender.models.base import SimilarityModel
from recommender.reasons import Explanations, shared_features
from recommender.search.neighbours import Neighbours

Weighting = Literal["raw", "log", "bm25"]


def bm25_weight(matrix: sparse.csr_matrix, k1: float = 1.2, b: float = 0.75) -> sparse.csr_matrix:
    """BM25-weight a user × item matrix of (already log-damped) strengths.

    ``implicit.nearest_neighbours.bm25_weight`` with one change, which is why it is not called:
    its IDF, log(N) − log1p(df), is zero or negative for a course that all users or all but one
    watched, so such a course would count *against* similarity (or vanish, and a user who only
    watched such courses would lose their vector).  Here the IDF is floored just above zero.
    ``tests/models/test_knn_course_view.py`` checks every other weight against implicit's.
    """
    matrix = sparse.csr_matrix(matrix, dtype=np.float64, copy=True)
    n_users = matrix.shape[0]
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    idf = np.log(n_users) - np.log1p(df)
    idf = np.maximum(idf, 0.0) + 1e-3
    row_sums = np.asarray(matrix.sum(axis=1)).ravel()
    length_norm = (1.0 - b) + b * row_sums / max(row_sums.mean(), 1e-12)
    row_of = np.repeat(np.arange(n_users), np.diff(matrix.indptr))
    tf = matrix.data
    matrix.data = tf * (k1 + 1.0) / (k1 * length_norm[row_of] + tf) * idf[matrix.indices]
    return matrix


class KnnUserCourseView(SimilarityModel):
    tuning_grid = [{}, {"weighting": "raw"}, {"weighting": "log"}, {"k1": 0.6}, {"k1": 2.0}, {"b": 0.3}, {"b": 1.0}]
    tuning_target = ("courses", "ndcg_at_{k}")

    def __init__(self, weighting: Weighting = "bm25", k1: float = 1.2, b: float = 0.75) -> None:
        if weighting not in ("raw", "log", "bm25"):
            raise ValueError(f"weighting must be raw, log or bm25, not {weighting!r}")
        self.weighting, self.k1, self.b = weighting, k1, b

    def fit(self, tables: Tables) -> Self:
        views = user_item_matrix(tables.user_course_views, "user_handle", "course_id", "view_time_seconds")
        matrix = views.matrix
        if self.weighting != "raw":
            matrix = matrix.copy()
            matrix.data = np.log1p(matrix.data / 60.0)
        if self.weighting == "bm25":
            matrix = bm25_weight(matrix, self.k1, self.b)
        self.vectors_ = matrix.tocsr()
        self.users_ = views.users
        self.courses_ = views.items
        return self

    def explain(self, neighbours: Neighbours) -> Explanations:
        """The shared courses with the largest contribution to the cosine."""
        return shared_features(self.vectors_, self.users_, neighbours, self.courses_, "course")
