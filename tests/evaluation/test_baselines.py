from __future__ import annotations

import numpy as np

from recommender.evaluation.baselines import most_active_neighbours, random_neighbours


def test_random_neighbours_are_distinct_others_and_seeded():
    users = np.arange(1, 1201)
    pool = np.arange(1, 1001)
    first = random_neighbours(users, pool, 10, seed=5)
    assert (first.similar >= 1).all() and (first.similar <= 1000).all()
    assert not (first.similar == users[:, None]).any()
    assert all(len(set(row)) == 10 for row in first.similar)
    np.testing.assert_array_equal(first.similar, random_neighbours(users, pool, 10, seed=5).similar)
    assert not np.array_equal(first.similar, random_neighbours(users, pool, 10, seed=6).similar)


def test_random_neighbours_of_a_tiny_pool_are_padded():
    answer = random_neighbours(np.array([1, 2]), np.array([1, 2, 3]), 5, seed=0)
    assert (answer.similar[:, 2:] == -1).all()
    assert set(answer.similar[0, :2]) == {2, 3} and set(answer.similar[1, :2]) == {1, 3}


def test_most_active_neighbours_exclude_self():
    activity_users = np.array([1, 2, 3, 4, 5])
    activity = np.array([5, 9, 9, 1, 0])
    answer = most_active_neighbours(np.array([2, 4, 6]), activity_users, activity, 2)
    np.testing.assert_array_equal(answer.similar, [[3, 1], [2, 3], [2, 3]])
    assert np.isnan(most_active_neighbours(np.array([1]), np.array([1]), np.array([3]), 2).scores).all()
