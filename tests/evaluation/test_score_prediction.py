from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.evaluation.score_prediction import TAG_MEAN, USER_MEAN, ScoreTask, evaluate_scores
from recommender.topk import Neighbours

COLUMNS = ["user_handle", "assessment_tag", "user_assessment_score"]


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.fixture()
def task() -> ScoreTask:
    # Training: tag a taken by 2, 3, 4 (percentiles 1/6, 1/2, 5/6); tag b by 2 (50) and 1 (60): 1/4, 3/4.
    train = frame([(2, "a", 100), (3, "a", 200), (4, "a", 300), (2, "b", 50), (1, "b", 60)])
    # Held out: user 1 on a (250: above 2 of the 3 takers -> 2/3), user 5 on b (10: below both -> 0),
    # user 5 on c (nobody took c in training: cannot be normalised, left out).  User 1's 250 is the
    # mean of two attempts.
    held = frame([(1, "a", 200), (1, "a", 300), (5, "b", 10), (5, "c", 99)])
    full = pd.concat([train, held], ignore_index=True)
    return ScoreTask.build(train, held[["user_handle", "assessment_tag"]].drop_duplicates(), full, np.arange(1, 7))


def test_targets_are_the_held_out_scores_percentile_among_the_tags_training_takers(task):
    order = np.argsort(task.pair_users)
    np.testing.assert_array_equal(task.pair_users[order], [1, 5])
    np.testing.assert_allclose(task.target[order], [2 / 3, 0.0])


def test_prediction_is_the_similarity_weighted_mean_of_the_neighbours_who_took_the_tag(task):
    # user 1's neighbours: 3 (0.5) and 4 (1.0) took a; 5 (0.9) did not.  User 5's only neighbour, 3, never took b.
    neighbours = Neighbours(np.array([1, 5]), np.array([[3, 4, 5], [3, -1, -1]]),
                            np.array([[0.5, 1.0, 0.9], [0.7, np.nan, np.nan]], dtype=np.float32))
    prediction, covered = task.predict(neighbours)
    order = np.argsort(task.pair_users)
    expected_1 = (0.5 * 0.5 + 1.0 * 5 / 6) / 1.5
    np.testing.assert_allclose(prediction[order], [expected_1, 0.5], atol=1e-6)  # user 5: tag b's mean
    np.testing.assert_array_equal(covered[order], [True, False])
    figures = evaluate_scores(task, {"model": neighbours})["metrics"]
    assert figures["model"]["mae"] == pytest.approx((abs(expected_1 - 2 / 3) + 0.5) / 2, abs=1e-6)
    assert figures["model"]["mae_covered"] == pytest.approx(abs(expected_1 - 2 / 3), abs=1e-6)
    assert figures["model"]["coverage"] == 0.5
    # references: the tag mean (a: 1/2, b: 1/2) and the user's own mean (user 1: 3/4 on b; user 5: none -> tag mean)
    assert figures[TAG_MEAN]["mae"] == pytest.approx((abs(0.5 - 2 / 3) + 0.5) / 2)
    assert figures[USER_MEAN]["mae"] == pytest.approx((abs(0.75 - 2 / 3) + 0.5) / 2)
    assert "coverage" not in figures[TAG_MEAN]


def test_neighbours_who_took_nothing_leave_every_pair_uncovered(task):
    nobody = Neighbours(np.array([1, 5]), np.array([[6, -1], [6, -1]]), np.array([[1.0, np.nan]] * 2, dtype=np.float32))
    result = evaluate_scores(task, {"model": nobody})
    assert result["metrics"]["model"]["coverage"] == 0.0
    assert "mae_covered" not in result["metrics"]["model"]
