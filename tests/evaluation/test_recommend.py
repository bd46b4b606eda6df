from __future__ import annotations

import numpy as np
from scipy import sparse

from recommender.evaluation.recommend import Interactions, neighbour_weights, recommend
from recommender.topk import Neighbours


def test_neighbours_items_weighted_by_similarity_minus_seen():
    users = np.array([10, 20, 30, 40])
    train = Interactions.build(users, np.array(["a", "b", "c", "d"]),
                               np.array([10, 20, 20, 30, 30, 40]), np.array(["a", "a", "b", "c", "d", "b"]))
    answers = Neighbours(
        users=np.array([10, 40]),
        similar=np.array([[20, 30], [10, -1]]),
        scores=np.array([[0.9, 0.4], [0.5, np.nan]], dtype=np.float32),
    )
    rows_for = np.array([10, 30, 40])
    weights = neighbour_weights(answers, users, rows_for)
    assert weights.shape == (3, 4)
    np.testing.assert_allclose(weights.toarray(), [[0, 0.9, 0.4, 0], [0, 0, 0, 0], [0.5, 0, 0, 0]], rtol=1e-6)
    seen = train.matrix[[0, 2, 3]]
    recs = recommend(weights, train.matrix, seen, 3)
    # user 10: b 0.9 (a is seen), then c and d tie at 0.4 -> lower index first
    # user 30: nobody; user 40: a 0.5 (b is seen)
    np.testing.assert_array_equal(recs, [[1, 2, 3], [-1, -1, -1], [0, -1, -1]])


def test_blocks_do_not_change_the_answer():
    rng = np.random.default_rng(0)
    train = sparse.random(200, 50, density=0.1, random_state=1, format="csr")
    train.data[:] = 1
    weights = sparse.random(200, 200, density=0.05, random_state=2, format="csr")
    whole = recommend(weights, train, train, 10, block=10_000)
    np.testing.assert_array_equal(whole, recommend(weights, train, train, 10, block=7))
    dense = np.asarray((weights @ train).todense())
    dense[train.toarray() > 0] = 0
    for row in rng.choice(200, 20, replace=False):
        expected = np.lexsort((np.arange(50), -np.round(dense[row], 9)))[:10]
        expected = [j for j in expected if dense[row, j] > 0]
        got = [j for j in whole[row] if j >= 0]
        assert got == expected
