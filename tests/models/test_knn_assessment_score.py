from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from recommender.data.loader import Tables
from recommender.models.knn_assessment_score import KnnUserAssessmentScore, tag_percentiles
from recommender.search.options import SearchOptions
from recommender.topk import similar_users
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
    answer = similar_users(model, 4)
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


@pytest.mark.parametrize("params", [{}, {"normalisation": "zscore"}, {"idf": False}, {"smoothing": 0.0},
                                    {"representation": "per_tag"}, {"representation": "per_tag", "idf": False}])
def test_search_matches_brute_force(small_tables, params):
    model = KnnUserAssessmentScore(**params).fit(small_tables)
    vectors, users = model.user_vectors()
    assert (vectors.data >= 0).all()
    assert set(users) == set(small_tables.user_assessment_scores["user_handle"])
    # Many users took one assessment with the same score (identical vectors): compare the scores, and
    # the neighbours above each row's last score (which ties at the cut-off decide by float rounding).
    answer = similar_users(model, 10, search=SearchOptions(block_mb=1))
    ids, expected = brute_force(vectors, users, 10)
    np.testing.assert_allclose(np.where(expected > 0, expected, np.nan), answer.scores, atol=2e-6, equal_nan=True)
    above = expected > np.nan_to_num(expected[:, -1:], nan=0.0) + 1e-5
    for row in range(len(users)):
        assert set(ids[row][above[row]]) <= set(answer.similar[row])


@pytest.mark.parametrize("params, match", [({"normalisation": "minmax"}, "normalisation"),
                                           ({"representation": "scores"}, "representation"),
                                           ({"smoothing": -1.0}, "smoothing")])
def test_bad_parameters_are_refused(params, match):
    with pytest.raises(ValueError, match=match):
        KnnUserAssessmentScore(**params)


def _neighbours(model: KnnUserAssessmentScore, n: int = 5) -> dict[int, dict[int, float]]:
    answer = similar_users(model, n)
    return {int(u): {int(v): float(s) for v, s in zip(ids, sc) if v >= 0} for u, ids, sc in
            zip(answer.users, answer.similar, answer.scores)}


RELATED = [(1, "python", 200), (2, "python", 200), (2, "django", 200), (3, "django", 200), (4, "java", 200),
           (5, "python", 60), (6, "python", 10), (6, "django", 250)]


def test_topic_level_links_users_who_took_assessments_taken_together_and_per_tag_does_not():
    # 1 took python, 3 took django: they share no assessment, but python and django are taken together (2, 6).
    topic = _neighbours(KnnUserAssessmentScore().fit(scores(RELATED)))
    assert 3 in topic[1] and topic[1][3] > 0
    assert 4 not in topic[1] and topic.get(4, {}) == {}  # java is never taken with anything
    per_tag = _neighbours(KnnUserAssessmentScore(representation="per_tag").fit(scores(RELATED)))
    assert 3 not in per_tag[1]


def test_topic_level_is_topic_times_level():
    # 1 and 5 took only python, 1 at the top half, 5 lower: cosine = 1 (same topic) x cos(θ_1 - θ_5) < 1.
    model = KnnUserAssessmentScore().fit(scores(RELATED))
    positions = tag_percentiles(scores(RELATED).user_assessment_scores).set_index(["user_handle", "assessment_tag"])
    theta = positions["position"] * np.pi / 2
    expected = np.cos(theta[(1, "python")] - theta[(5, "python")])
    assert _neighbours(model)[1][5] == pytest.approx(expected, abs=1e-5)


def test_reasons_name_only_assessments_both_users_took():
    model = KnnUserAssessmentScore().fit(scores(RELATED))
    answer = similar_users(model, 5)
    reasons = model.explain(answer)
    row = int(np.flatnonzero(answer.users == 1)[0])
    listed = [int(v) for v in answer.similar[row] if v >= 0]
    by_neighbour = dict(zip(listed, reasons.for_row(row, len(listed))))
    assert by_neighbour[3] == []  # related (python ~ django) but no assessment in common: no false reason
    assert [value for _, value, _ in by_neighbour[2]] == ["python"]
    assert 0 < by_neighbour[2][0][2] <= float(answer.scores[row][listed.index(2)]) + 1e-3


def test_search_memory_is_far_below_an_n_by_n_matrix_on_6000_users():
    # The smoothed topic makes the vectors dense enough for the dense kernel: blocks of scores, never N×N.
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(6000), 2)
    tags = np.where(np.arange(users.size) % 2 == 0, rng.integers(0, 10, users.size), rng.integers(0, 54, users.size))
    rows = list(zip(users.tolist(), [f"t{t}" for t in tags], rng.integers(50, 300, users.size).tolist()))
    model = KnnUserAssessmentScore().fit(scores(rows))
    similar_users(model, 10)
    tracemalloc.start()
    try:
        similar_users(model, 10, search=SearchOptions(block_mb=1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full = 6000 * 6000 * 4
    assert peak < full / 4, f"peak {peak / 2**20:.1f} MB (N×N would be {full / 2**20:.1f} MB)"


def test_interests_bring_takers_with_other_assessments_and_never_non_takers():
    # User 1 took python only and follows django; user 2 took python too (and nothing else), user 3
    # took python and flask and follows django, user 4 follows django but took no assessment.
    rows = [(1, "python", 200), (2, "python", 200), (3, "python", 200), (3, "flask", 150), (5, "java", 100)]
    frame = scores(rows)
    follows = pd.DataFrame([(1, "django"), (3, "django"), (4, "django"), (2, "cobol"), (5, "cobol")],
                           columns=["user_handle", "interest_tag"])
    follows["date_followed"] = pd.Timestamp("2020-01-01")
    tables = Tables(follows, frame.user_course_views, frame.user_assessment_scores, frame.course_tags)
    alone = _neighbours(KnnUserAssessmentScore(interests=0.0).fit(tables))
    assert alone[1][2] >= alone[1][3]  # assessments alone: the subset user 2 is at least as close
    both = KnnUserAssessmentScore().fit(tables)
    found = _neighbours(both)
    assert found[1][3] > found[1].get(2, 0.0)  # with the interests, the taker who follows django comes first
    assert 4 not in found[1] and set(both.users_) == {1, 2, 3, 5}  # a non-taker is never a neighbour
