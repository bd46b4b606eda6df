"""Reasons on hand-made cases, through the models that compute them, and the stored item's size."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recommender.data.loader import Tables
from recommender.models.knn_assessment_score import KnnUserAssessmentScore
from recommender.models.tfidf_interest import TfidfUserInterest
from recommender.reasons import MAX_REASONS, WEIGHT_DECIMALS, describe, shared_features
from recommender.store.codec import json_line, stored_size, to_dynamo
from recommender.store.items import build_items
from recommender.topk import Neighbours, similar_users

EMPTY = pd.DataFrame()


def interests(rows: list[tuple[int, str]]) -> Tables:
    return Tables(pd.DataFrame(rows, columns=["user_handle", "interest_tag"]), EMPTY, EMPTY, EMPTY)


def test_the_one_shared_rare_tag_comes_first():
    # Users 1 and 2 share "javascript" (everyone follows it) and exactly one rare tag, "elixir".
    rows = [(u, "javascript") for u in range(1, 11)] + [(1, "elixir"), (2, "elixir"), (1, "cobol"), (2, "rust")]
    rows += [(u, f"tag{u}") for u in range(3, 11)]
    model = TfidfUserInterest().fit(interests(rows))
    answer = similar_users(model, 3)
    explanations = model.explain(answer)
    row = int(np.flatnonzero(answer.users == 1)[0])
    assert answer.similar[row, 0] == 2
    reasons = explanations.for_row(row, 1)[0]
    assert [r[1] for r in reasons] == ["elixir", "javascript"]  # only shared tags, the rare one first
    assert all(kind == "tag" for kind, _, _ in reasons) and reasons[0][2] > reasons[1][2] > 0
    # the contributions are the cosine's terms: they add up to the score
    assert abs(sum(w for _, _, w in reasons) - answer.scores[row, 0]) < 2e-3
    # a neighbour that shares only javascript gets that one reason
    others = explanations.for_row(row, 3)[1:]
    assert all([r[1] for r in why] == ["javascript"] for why in others)


def test_assessment_reasons_are_the_shared_tags():
    frame = pd.DataFrame(
        [(1, "python", 200), (1, "sql", 150), (2, "python", 205), (2, "sql", 140), (2, "java", 100), (3, "python", 90)],
        columns=["user_handle", "assessment_tag", "user_assessment_score"],
    )
    model = KnnUserAssessmentScore().fit(Tables(EMPTY, EMPTY, frame, EMPTY))
    answer = similar_users(model, 2)
    reasons = model.explain(answer).for_row(0, 1)[0]
    assert answer.similar[0, 0] == 2 and {r[1] for r in reasons} == {"python", "sql"}
    assert describe("assessment", "sql") == "both took the sql assessment with similar results"


def test_stored_items_with_reasons_stay_under_4_kb_at_n_10(small_tables):
    from recommender.models.knn_course_view import KnnUserCourseView

    model = KnnUserCourseView().fit(small_tables)
    answer = similar_users(model, 10)
    items = list(build_items("knn_collab_filtering_user_course_view", answer, "20260101T000000Z-abcdef12", "2026-01-01T00:00:00Z",
                             model.explain(answer)))
    assert any(len(n.reasons) == MAX_REASONS for i in items for n in i.neighbours)
    # as DynamoDB counts it (stored_size); the readable JSON record (dry-run) is larger still
    largest = max(stored_size(to_dynamo(i)) for i in items)
    assert largest < 4096, largest
    assert max(len(json.dumps(json.loads(json_line(i))).encode()) for i in items) > largest


@pytest.mark.parametrize("grouped", [False, True])
def test_shared_features_equal_a_brute_force_oracle(grouped):
    """Every pair's top reasons against dense products, one pair at a time; ``grouped``: two columns per feature."""
    rng = np.random.default_rng(8)
    users, columns, n = 60, 12, 6
    dense = np.where(rng.random((users, columns)) < 0.45, rng.integers(1, 4, (users, columns)), 0).astype(float)
    dense[5] = 0  # a user without features
    dense[:, 3] = dense[:, 4] = np.where(dense[:, 3] > 0, 1.0, 0.0)  # equal contributions: ties by feature
    handles = np.arange(100, 100 + users)
    similar = np.stack([rng.choice(np.delete(handles, i), n, replace=False) for i in range(users)])
    similar[::9, 4:] = -1
    neighbours = Neighbours(handles, similar, np.where(similar >= 0, 0.5, np.nan).astype(np.float32))
    feature = np.arange(columns) // 2 if grouped else np.arange(columns)
    names = np.array([f"f{j}" for j in range(feature.max() + 1)])
    got = shared_features(sparse.csr_matrix(dense), handles, neighbours, names, "tag",
                          feature_of_column=feature if grouped else None)
    unit = dense / np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-300)
    for i in range(users):
        for r in range(n):
            v = similar[i, r]
            if v < 0:
                assert (got.index[i, r] == -1).all()
                continue
            products = unit[i] * unit[v - 100]
            sums = np.bincount(feature, weights=products, minlength=len(names))
            shared = np.bincount(feature, weights=(products > 0), minlength=len(names)) > 0
            order = [j for j in sorted(range(len(names)), key=lambda j: (-sums[j], j)) if shared[j] and sums[j] > 0]
            order = order[:MAX_REASONS]
            assert got.index[i, r, :len(order)].tolist() == order and (got.index[i, r, len(order):] == -1).all()
            np.testing.assert_allclose(got.weight[i, r, :len(order)], np.round(sums[order], WEIGHT_DECIMALS), atol=1e-12)


def test_level_reasons_tell_neighbours_apart_by_the_shares_that_differ():
    # User 1 watches 60% Intermediate, 30% Beginner, 10% Advanced; the neighbours watch all three
    # levels too, in different proportions: the reasons say how much, so they differ per neighbour.
    from recommender.data.schema import LEVELS
    from recommender.reasons import level_overlap

    order = [LEVELS.index(level) for level in ("Beginner", "Intermediate", "Advanced")]
    shares = {1: (0.3, 0.6, 0.1), 2: (0.3, 0.6, 0.1), 3: (0.1, 0.8, 0.1), 4: (0.5, 0.2, 0.3), 5: (0.0, 0.97, 0.03)}
    users = np.array(sorted(shares))
    mix = np.zeros((len(users), len(LEVELS)))
    for row, user in enumerate(users):
        mix[row, order] = shares[user]
    neighbours = Neighbours(np.array([1]), np.array([[2, 3, 4, 5]]), np.array([[0.9, 0.8, 0.7, 0.6]], dtype=np.float32))
    reasons = level_overlap(mix, users, neighbours, LEVELS).for_row(0, 4)
    texts = [[describe(kind, value) for kind, value, _ in why] for why in reasons]
    assert len({tuple(t) for t in texts}) == 4  # four neighbours, four different explanations
    assert texts[0][0] == "both watch Intermediate courses (60% of yours, 60% of theirs)"
    assert texts[1][0] == "both watch Intermediate courses (60% of yours, 80% of theirs)"
    assert texts[2][0] == "both watch Beginner courses (30% of yours, 50% of theirs)"  # the largest overlap first
    # a level the neighbour barely watches (3% < 5%) is no reason; weights are the overlaps
    assert [value.split(" ")[0] for _, value, _ in reasons[3]] == ["Intermediate"]
    assert [w for _, _, w in reasons[1]] == [0.6, 0.1, 0.1]
