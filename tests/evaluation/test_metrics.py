from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recommender.evaluation import metrics
from recommender.topk import Neighbours


def relevant(rows: list[list[int]], n_items: int = 10) -> sparse.csr_matrix:
    r = [i for i, items in enumerate(rows) for _ in items]
    c = [j for items in rows for j in items]
    return sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), n_items))


def neighbours(users: list[int], similar: list[list[int]]) -> Neighbours:
    ids = np.array(similar, dtype=np.int64)
    return Neighbours(np.array(users, dtype=np.int64), ids, np.where(ids >= 0, 1.0, np.nan).astype(np.float32))


def test_ranking_metrics_hand_made():
    recommended = np.array([
        [1, 2, 3],    # relevant {2, 5}: one hit at rank 1
        [4, -1, -1],  # relevant {4}: hit at rank 0
        [7, 8, 9],    # relevant {0}: no hit
        [-1, -1, -1],  # nothing recommended
        [5, 6, 0],    # relevant {0, 5, 6, 9}: hits at ranks 0, 1, 2 (k=3 caps the ideal at 3)
    ])
    got = metrics.ranking_metrics(recommended, relevant([[2, 5], [4], [0], [3], [0, 5, 6, 9]]))
    d = [1.0, 1 / math.log2(3), 1 / math.log2(4)]
    np.testing.assert_allclose(got["recall"], [0.5, 1.0, 0.0, 0.0, 0.75])
    np.testing.assert_allclose(got["ndcg"], [d[1] / (d[0] + d[1]), 1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(got["hit_rate"], [1, 1, 0, 0, 1])


def test_ndcg_rewards_earlier_hits():
    late = metrics.ranking_metrics(np.array([[1, 2, 3]]), relevant([[3]]))["ndcg"][0]
    early = metrics.ranking_metrics(np.array([[3, 1, 2]]), relevant([[3]]))["ndcg"][0]
    assert early == 1.0 and late == pytest.approx(0.5)  # 1/log2(4)


def test_ranking_metrics_need_relevant_items():
    with pytest.raises(ValueError):
        metrics.ranking_metrics(np.array([[1]]), relevant([[]]))


def test_catalogue_and_user_coverage():
    assert metrics.catalogue_coverage(np.array([[1, 2], [2, -1]]), 4) == 0.5
    answers = neighbours([1, 2, 3], [[2, 3], [-1, -1], [1, -1]])
    assert metrics.user_coverage(answers, np.array([1, 2, 3, 4])) == 0.5


def test_level_accuracy_hand_made():
    weights = sparse.csr_matrix(np.array([[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]))  # user 0 -> users 1, 2
    level_mix = np.array([[1.0, 0, 0], [0.0, 1.0, 0], [0.5, 0.0, 0.5]])
    heldout_levels = np.array([[1, 3, 0], [2, 0, 0]])
    # user 0: predicted mix (0.25, 1, 0.25) -> level 1, 3 of 4 held-out items; user 1: no neighbours.
    np.testing.assert_allclose(metrics.level_accuracy(weights, level_mix, heldout_levels), [0.75, 0.0])


def test_planted_precision_and_chance():
    truth = pd.Series({1: "a", 2: "a", 3: "b", 4: "b"})
    answers = neighbours([1, 2, 3, 5], [[2, 3], [1, -1], [1, 2], [1, 2]])
    # user 1: 1/2, user 2: 1/1, user 3: 0/2; user 5 is not in the truth.
    assert metrics.planted_precision(answers, truth) == pytest.approx(0.5)
    assert metrics.chance_precision(truth) == 0.5


def test_jaccard():
    a = neighbours([1, 2, 3], [[2, 3, 4], [1, 3, -1], [1, -1, -1]])
    assert metrics.mean_jaccard(a, a) == 1.0
    b = neighbours([1, 2, 4], [[2, 5, 6], [4, 5, -1], [1, -1, -1]])
    # common users 1 and 2: |{2}| / |{2,3,4,5,6}| = 0.2 and 0 / 4 = 0
    assert metrics.mean_jaccard(a, b) == pytest.approx(0.1)
    assert metrics.mean_jaccard(a, neighbours([7], [[1, 2, 3]])) == 0.0
