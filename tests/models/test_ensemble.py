from __future__ import annotations

import numpy as np
import pytest

from recommender.models.ensemble import EnsembleUserSimilarity
from recommender.models.registry import create_model
from recommender.topk import Neighbours


def lists(users, similar) -> Neighbours:
    similar = np.asarray(similar, dtype=np.int64)
    return Neighbours(np.asarray(users, dtype=np.int64), similar, np.where(similar >= 0, 0.5, np.nan).astype(np.float32))


def test_reciprocal_rank_fusion_by_hand():
    a = lists([1, 2], [[10, 11, 12], [-1, -1, -1]])
    b = lists([1, 3], [[12, 13, -1], [1, -1, -1]])
    model = EnsembleUserSimilarity({"a": 2.0, "b": 1.0}, c=1.0)
    answer = model.combine({"a": a, "b": b}, 3)
    np.testing.assert_array_equal(answer.users, [1, 3])  # user 2 has no neighbour in any list
    best = 3.0 / 2.0
    # user 1: 10 -> 2/2 = 1.0; 12 -> 2/4 + 1/2 = 1.0 (tie: lower handle first); 11 -> 2/3
    np.testing.assert_array_equal(answer.similar[0], [10, 12, 11])
    np.testing.assert_allclose(answer.scores[0], np.array([1.0, 1.0, 2 / 3]) / best, atol=1e-6)
    np.testing.assert_array_equal(answer.similar[1], [1, -1, -1])
    # the reasons: which models list each neighbour, with their share of the fused score
    reasons = model.explain(answer).for_row(0, 3)
    assert reasons[1] == [("model", "a", round(0.5 / best, 3)), ("model", "b", round(0.5 / best, 3))]
    assert reasons[0] == [("model", "a", round(1.0 / best, 3))]


def test_zero_weight_models_are_left_out_and_missing_lists_skipped():
    a = lists([1], [[10, 11]])
    model = EnsembleUserSimilarity({"a": 1.0, "b": 0.0, "c": 1.0})
    assert model.components == ("a", "c")
    np.testing.assert_array_equal(model.combine({"a": a, "b": lists([1], [[99, -1]])}, 2).similar, [[10, 11]])
    with pytest.raises(ValueError, match="none of the ensemble"):
        model.combine({"b": a}, 2)


def test_covers_every_user_any_component_covers_and_equals_standalone_fit(small_tables):
    weights = {"tfidf_user_interest": 1.0, "knn_collab_filtering_user_course_view": 1.0}
    components = {h: create_model(h).fit(small_tables).similar_users(10) for h in weights}
    fused = EnsembleUserSimilarity(weights).combine(components, 10)
    covered = set().union(*({int(u) for u, _, _ in c.rows()} for c in components.values()))
    assert {int(u) for u, _, _ in fused.rows()} == covered
    standalone = create_model("ensemble_user_similarity", weights=weights).fit(small_tables).similar_users(10)
    np.testing.assert_array_equal(standalone.similar, fused.similar)


@pytest.mark.parametrize("params", [{"weights": {"a": -1.0}}, {"weights": {"a": 0.0}}, {"c": -1.0}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        EnsembleUserSimilarity(**params)
