from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recommender.data.loader import Tables
from recommender.models.als_course_view import AlsUserCourseView
from recommender.search.options import SearchOptions
from recommender.topk import similar_users
from tests.test_topk import assert_matches


def views(rows: list[tuple[int, str, float]]) -> Tables:
    frame = pd.DataFrame(rows, columns=["user_handle", "course_id", "view_time_seconds"]).assign(level="Beginner")
    empty = pd.DataFrame()
    return Tables(empty, frame, empty, empty)


def two_rings() -> Tables:
    """Two groups of 12 users; user i of a group watches courses i, i+1 and i+2 of the group's own ring
    of 6 courses, so users i and i+3 share no course: only the factors can tell they belong together."""
    rows = []
    for group, prefix in enumerate("ab"):
        for i in range(12):
            user = 1 + group * 12 + i
            rows += [(user, f"{prefix}{(i + j) % 6}", 600.0 + 30 * i + 100 * j) for j in range(3)]
    return views(rows)


def test_neighbours_come_from_the_same_ring_even_without_a_shared_course():
    model = AlsUserCourseView(factors=2, iterations=20).fit(two_rings())
    answer = similar_users(model, 5)
    group = (answer.users - 1) // 12
    neighbour_group = np.where(answer.similar >= 0, (answer.similar - 1) // 12, -1)
    assert (neighbour_group == group[:, None]).mean() > 0.9
    # user 1 (courses a0-a2) and user 4 (a3-a5) share nothing, yet 4 is closer to 1 than any b user
    vectors, users = model.user_vectors()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit[0] @ unit.T
    assert sims[3] > sims[12:].max()


def test_fit_is_deterministic(small_tables):
    first = AlsUserCourseView().fit(small_tables).vectors_
    second = AlsUserCourseView().fit(small_tables).vectors_
    np.testing.assert_array_equal(first, second)


def test_search_matches_brute_force_on_the_factors(small_tables):
    model = AlsUserCourseView().fit(small_tables)
    vectors, users = model.user_vectors()
    assert vectors.shape == (len(users), model.factors)
    assert_matches(similar_users(model, 10, search=SearchOptions(block_mb=1)), vectors, users, 10)


def test_users_without_views_are_absent(small_tables):
    model = AlsUserCourseView().fit(small_tables)
    assert set(model.users_) == set(small_tables.user_course_views["user_handle"])


def test_direct_recommendations_skip_seen_courses_and_rank_by_score():
    model = AlsUserCourseView(factors=4, iterations=10).fit(two_rings())
    seen = sparse.csr_matrix(model.confidence_ > 0)
    rows = np.arange(len(model.users_))
    top = model.recommend_courses(rows, seen[rows], 3)
    assert top.shape == (len(rows), 3)
    assert not np.take_along_axis(seen.toarray(), top, 1).any()
    scores = np.take_along_axis(model.vectors_ @ model.course_factors_.T, top, 1)
    assert (np.diff(scores, axis=1) <= 0).all()


@pytest.mark.parametrize("params", [{"weighting": "raw"}, {"factors": 0}, {"alpha": 0.0}, {"regularization": -1.0}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        AlsUserCourseView(**params)
