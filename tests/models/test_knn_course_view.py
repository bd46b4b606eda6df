from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recommender.data.loader import Tables
from recommender.models.knn_course_view import KnnUserCourseView, bm25_weight
from tests.test_topk import assert_matches


def views(rows: list[tuple[int, str, float]]) -> Tables:
    frame = pd.DataFrame(rows, columns=["user_handle", "course_id", "view_time_seconds"]).assign(level="Beginner")
    empty = pd.DataFrame()
    return Tables(empty, frame, empty, empty)


def test_view_time_is_summed_per_user_and_course():
    model = KnnUserCourseView(weighting="raw").fit(views([(1, "a", 100), (1, "a", 50), (2, "a", 10), (2, "b", 5)]))
    np.testing.assert_array_equal(model.vectors_.toarray(), [[150, 0], [10, 5]])


@pytest.mark.parametrize("weighting", ["raw", "log", "bm25"])
def test_each_weighting_matches_brute_force(small_tables, weighting):
    model = KnnUserCourseView(weighting=weighting).fit(small_tables)
    vectors, users = model.user_vectors()
    assert_matches(model.similar_users(10, block_mb=1), vectors, users, 10)


def test_users_without_views_are_absent(small_tables):
    model = KnnUserCourseView().fit(small_tables)
    assert set(model.users_) == set(small_tables.user_course_views["user_handle"])


def test_bm25_down_weights_popular_courses():
    matrix = sparse.csr_matrix(np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]))
    weighted = bm25_weight(matrix).toarray()
    assert weighted[0, 1] > weighted[0, 0] > 0


def test_unknown_weighting_is_refused():
    with pytest.raises(ValueError, match="weighting"):
        KnnUserCourseView(weighting="sqrt")
