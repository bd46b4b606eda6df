from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recommender.data.loader import Tables
from recommender.models.knn_course_view import KnnUserCourseView, bm25_weight
from recommender.search.options import SearchOptions
from recommender.topk import similar_users
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
    assert_matches(similar_users(model, 10, search=SearchOptions(block_mb=1)), vectors, users, 10)


def test_users_without_views_are_absent(small_tables):
    model = KnnUserCourseView().fit(small_tables)
    assert set(model.users_) == set(small_tables.user_course_views["user_handle"])


def test_bm25_down_weights_popular_courses():
    matrix = sparse.csr_matrix(np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]))
    weighted = bm25_weight(matrix).toarray()
    assert weighted[0, 1] > weighted[0, 0] > 0


def test_bm25_is_implicits_but_for_the_idf_floor(small_tables):
    """Same saturation and length norm as implicit's ``bm25_weight``; the IDF differs by the floor only."""
    from implicit.nearest_neighbours import bm25_weight as implicit_bm25

    matrix = KnnUserCourseView(weighting="log").fit(small_tables).vectors_
    ours = bm25_weight(matrix, k1=1.2, b=0.75)
    theirs = implicit_bm25(matrix, K1=1.2, B=0.75).tocsr()
    theirs.sort_indices()
    ours.sort_indices()
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    idf = np.log(matrix.shape[0]) - np.log1p(df)
    assert (idf > 0).all()  # on these data the floor is only the + 1e-3
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_allclose(ours.data, theirs.data * ((idf + 1e-3) / idf)[ours.indices], rtol=1e-12)


def test_unknown_weighting_is_refused():
    with pytest.raises(ValueError, match="weighting"):
        KnnUserCourseView(weighting="sqrt")
