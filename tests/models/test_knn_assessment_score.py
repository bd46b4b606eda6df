from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.data.loader import Tables
from recommender.models.knn_assessment_score import KnnUserAssessmentScore, tag_percentiles
from tests.test_topk import brute_force


def scores(rows: list[tuple[int, str, float]]) -> Tables:
    frame = pd.DataFrame(rows, columns=["user_handle", "assessment_tag", "user_assessment_score"])
    frame["user_assessment_date"] = pd.Timestamp("2020-01-01")
    empty = pd.DataFrame()
    return Tables(empty, empty, frame, empty)


def test_a_hard_assessments_150_compares_with_an_easy_ones_250():
    # "hard": everyone scores 100-150; "easy": 200-250.  Users 1 and 5 top their assessment.
    rows = [(u, "hard", s) for u, s in zip((1, 2, 3, 4), (150, 120, 110, 100))]
    rows += [(u, "easy", s) for u, s in zip((5, 6, 7, 8), (250, 220, 210, 200))]
    pairs = tag_percentiles(scores(rows).user_assessment_scores).set_index("user_handle")["position"]
    assert pairs[1] == pairs[5] == 0.875 and pairs[4] == pairs[8] == 0.125


def test_same_tag_at_the_same_level_is_closest_and_different_tags_are_unrelated():
    rows = [(1, "python", 250), (2, "python", 245), (3, "python", 100), (4, "java", 250), (5, "python", 90)]
    model = KnnUserAssessmentScore().fit(scores(rows))
    answer = model.similar_users(4)
    by_user = {u: list(s[s >= 0]) for u, s in zip(answer.users, answer.similar)}
    assert by_user[1][0] == 2  # the other top python scorer first
    assert 4 not in by_user[1] and by_user.get(4, []) == []  # java shares nothing with python
    row = {u: sc for u, sc in zip(answer.users, answer.scores)}
    assert np.all(row[1][np.isfinite(row[1])] > 0)


def test_repeated_attempts_are_averaged():
    rows = [(1, "sql", 100), (1, "sql", 200), (2, "sql", 150), (3, "sql", 10)]
    pairs = tag_percentiles(scores(rows).user_assessment_scores)
    assert pairs.loc[pairs.user_handle == 1, "score"].item() == 150
    assert len(pairs) == 3


@pytest.mark.parametrize("params", [{}, {"normalisation": "zscore"}, {"idf": True}])
def test_search_matches_brute_force(small_tables, params):
    model = KnnUserAssessmentScore(**params).fit(small_tables)
    vectors, users = model.user_vectors()
    assert (vectors.data >= 0).all()
    assert set(users) == set(small_tables.user_assessment_scores["user_handle"])
    # Many users took one assessment with the same score (identical vectors): compare the scores, and
    # the neighbours above each row's last score (which ties at the cut-off decide by float rounding).
    answer = model.similar_users(10, block_mb=1)
    ids, expected = brute_force(vectors, users, 10)
    np.testing.assert_allclose(np.where(expected > 0, expected, np.nan), answer.scores, atol=2e-6, equal_nan=True)
    above = expected > np.nan_to_num(expected[:, -1:], nan=0.0) + 1e-5
    for row in range(len(users)):
        assert set(ids[row][above[row]]) <= set(answer.similar[row])


def test_unknown_normalisation_is_refused():
    with pytest.raises(ValueError, match="normalisation"):
        KnnUserAssessmentScore(normalisation="minmax")
