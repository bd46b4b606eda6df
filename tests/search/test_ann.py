"""The approximate search: recall against exact search, determinism, and the exact search's rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recommender.search.ann import ann_top_k
from recommender.search.exact import exact_top_k
from recommender.search.options import SearchOptions
from recommender.search.recall import recall_at_k
from recommender.topk import top_k_cosine

ANN = SearchOptions(method="ann", recall_sample=500)


def clustered(users: int, dims: int, seed: int) -> np.ndarray:
    """Users around 40 centres, the shape of real embeddings (neighbours exist and are close)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dims))
    return (centres[rng.integers(0, 40, users)] + 0.6 * rng.normal(size=(users, dims))).astype(np.float32)


def wide_sparse(users: int, features: int, seed: int) -> sparse.csr_matrix:
    """Sparse rows wider than the index takes as they are (goes through the SVD), in communities."""
    rng = np.random.default_rng(seed)
    community = rng.integers(0, 20, users)
    cols = (community[:, None] * (features // 20) + rng.integers(0, 60, (users, 8))).ravel()
    rows = np.repeat(np.arange(users), 8)
    return sparse.csr_matrix((rng.random(rows.size).astype(np.float32) + 0.1, (rows, cols)), shape=(users, features))


@pytest.mark.parametrize("vectors", [clustered(3000, 32, 1), wide_sparse(3000, 2000, 2)], ids=["dense-32d", "sparse-2000-wide"])
def test_recall_at_10_is_at_least_095_against_exact_and_the_measured_value_is_honest(vectors):
    users = np.arange(1, 3001) * 3
    approx = ann_top_k(vectors, users, 10, options=ANN)
    exact = exact_top_k(vectors, users, 10)
    full_recall = recall_at_k(approx.similar, approx.scores, exact.similar, exact.scores)
    assert full_recall >= 0.95
    assert approx.method == "ann"
    assert abs(approx.recall_at_10 - full_recall) < 0.03, "the sampled recall estimates the full one"
    assert not (approx.similar == users[:, None]).any(), "self is never a neighbour"
    shown = approx.similar >= 0
    assert (approx.scores[shown] > 0).all() and np.isnan(approx.scores[~shown]).all()
    # Scores are the exact cosine on the model's own vectors, not on the index's.
    same = approx.similar == exact.similar
    np.testing.assert_allclose(approx.scores[same], exact.scores[same], atol=2e-6)


def test_two_runs_publish_the_same_lists():
    vectors = wide_sparse(2500, 1500, 5)
    users = np.arange(2500) + 10
    first = ann_top_k(vectors, users, 10, options=ANN)
    second = ann_top_k(vectors, users, 10, options=ANN)
    np.testing.assert_array_equal(first.similar, second.similar)
    np.testing.assert_array_equal(first.scores, second.scores)
    assert first.recall_at_10 == second.recall_at_10


def test_ties_among_candidates_go_to_the_lowest_handles():
    # 40 groups of 20 identical users: each list is a 19-way tie, all of it among the candidates.
    rng = np.random.default_rng(3)
    vectors = np.repeat(rng.normal(size=(40, 16)).astype(np.float32), 20, axis=0)
    users = np.arange(100, 900)
    result = ann_top_k(vectors, users, 5, options=ANN)
    np.testing.assert_array_equal(result.similar[0], [101, 102, 103, 104, 105])
    np.testing.assert_array_equal(result.similar[22], [120, 121, 123, 124, 125])  # user 122, group 2
    np.testing.assert_allclose(result.scores, 1.0, atol=1e-6)


def test_auto_is_exact_up_to_the_threshold_and_ann_above():
    vectors = clustered(400, 8, 4)
    users = np.arange(400)
    assert top_k_cosine(vectors, users, 5, search=SearchOptions(method="auto", auto_exact_max_users=400)).method == "exact"
    above = top_k_cosine(vectors, users, 5, search=SearchOptions(method="auto", auto_exact_max_users=399, recall_sample=100))
    assert above.method == "ann" and above.recall_at_10 is not None


def test_auto_keeps_vectors_too_wide_for_the_graph_exact_at_any_size():
    options = SearchOptions(method="auto", auto_exact_max_users=10)
    assert options.resolve(1000, features=5942) == "exact"
    assert options.resolve(1000, features=750) == "ann"
    assert SearchOptions(method="ann").resolve(1000, features=5942) == "ann"


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="not one of exact, ann, auto"):
        SearchOptions(method="fast")
