"""The approximate search: recall against exact search, determinism, and the exact search's rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recommender.search.ann import ann_top_k, plan
from recommender.search.exact import exact_top_k, unit_rows
from recommender.search.options import SearchOptions
from recommender.search.recall import RecallTooLow, check_recall, recall_at_k
from recommender.search.rerank import rerank
from recommender.topk import top_k_cosine
from recommender.search.neighbours import Neighbours
from tests.test_topk import _by_tie_key, assert_matches

ANN = SearchOptions(method="ann", recall_sample=500)


def clustered(users: int, dims: int, seed: int) -> np.ndarray:
    """Users around 40 centres, the shape of real embeddings (neighbours exist and are close)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dims))
    return (centres[rng.integers(0, 40, users)] + 0.6 * rng.normal(size=(users, dims))).astype(np.float32)


def wide_sparse(users: int, features: int, seed: int) -> sparse.csr_matrix:
    """Sparse rows in communities (the cluster index searches them)."""
    rng = np.random.default_rng(seed)
    community = rng.integers(0, 20, users)
    cols = (community[:, None] * (features // 20) + rng.integers(0, 60, (users, 8))).ravel()
    rows = np.repeat(np.arange(users), 8)
    return sparse.csr_matrix((rng.random(rows.size).astype(np.float32) + 0.1, (rows, cols)), shape=(users, features))


@pytest.mark.parametrize("vectors", [clustered(3000, 32, 1), wide_sparse(3000, 2000, 2)], ids=["dense-32d", "sparse-2000-wide"])
def test_recall_at_10_is_at_least_095_against_exact_and_the_measured_value_is_honest(vectors):
    users = np.arange(1, 3001) * 3
    approx = top_k_cosine(vectors, users, 10, search=ANN)  # sparse ones: the cluster index
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


@pytest.mark.parametrize("vectors", [clustered(4000, 32, 7), wide_sparse(2500, 1500, 5)], ids=["dense", "sparse"])
def test_two_runs_publish_the_same_lists(vectors):
    users = np.arange(vectors.shape[0]) + 10
    first = top_k_cosine(vectors, users, 10, search=ANN)
    second = top_k_cosine(vectors, users, 10, search=ANN)
    np.testing.assert_array_equal(first.similar, second.similar)
    np.testing.assert_array_equal(first.scores, second.scores)
    assert first.recall_at_10 == second.recall_at_10


def test_ties_among_candidates_go_by_the_tie_key():
    # 40 groups of 20 identical users: each list is a 19-way tie, all of it among the candidates.
    rng = np.random.default_rng(3)
    vectors = np.repeat(rng.normal(size=(40, 16)).astype(np.float32), 20, axis=0)
    users = np.arange(100, 900)
    result = ann_top_k(vectors, users, 5, options=ANN)
    assert result.similar[0].tolist() == _by_tie_key(100, users[:20], 5)
    assert result.similar[22].tolist() == _by_tie_key(122, users[20:40], 5)  # group 2
    np.testing.assert_allclose(result.scores, 1.0, atol=1e-6)


def test_auto_is_exact_up_to_the_threshold_and_ann_above():
    vectors = clustered(400, 8, 4)
    users = np.arange(400)
    assert top_k_cosine(vectors, users, 5, search=SearchOptions(method="auto", auto_exact_max_users=400)).method == "exact"
    above = top_k_cosine(vectors, users, 5, search=SearchOptions(method="auto", auto_exact_max_users=399, recall_sample=100))
    assert above.method == "ann" and above.recall_at_10 is not None


def test_auto_goes_by_size_and_sparse_vectors_above_it_go_to_the_cluster_index():
    options = SearchOptions(method="auto", auto_exact_max_users=1000)
    assert options.resolve(1000) == "exact" and options.resolve(1001) == "ann"
    assert SearchOptions(method="ann").resolve(10) == "ann" and SearchOptions(method="exact").resolve(10**7) == "exact"
    views = wide_sparse(3000, 2000, 11)
    above = SearchOptions(method="auto", auto_exact_max_users=100, recall_sample=500)
    answer = top_k_cosine(views, np.arange(3000), 10, search=above)
    assert answer.method == "ann" and answer.plan["index"] == "clusters" and answer.recall_at_10 >= 0.95
    assert top_k_cosine(views.toarray(), np.arange(3000), 10, search=above).plan["index"] == "IVFFlat"


def test_a_forced_poor_setting_fails_the_recall_check():
    vectors = clustered(3000, 32, 6)
    poor = SearchOptions(method="ann", recall_sample=500, ann_candidates=1, ann_nprobe=1)
    result = ann_top_k(vectors, np.arange(3000), 10, options=poor)
    assert result.recall_at_10 < 0.95
    with pytest.raises(RecallTooLow):
        check_recall("m", result.recall_at_10, 0.95)
    # Under auto the same setting is not published: the search is exact, and says why.
    auto = SearchOptions(method="auto", auto_exact_max_users=100, recall_sample=500, ann_candidates=1, ann_nprobe=1)
    answer = top_k_cosine(vectors, np.arange(3000), 10, search=auto)
    assert answer.method == "exact" and answer.recall_at_10 == 1.0
    assert answer.plan["fallback"] == "exact" and answer.plan["recall_at_10"] == result.recall_at_10
    np.testing.assert_array_equal(answer.similar, exact_top_k(vectors, np.arange(3000), 10).similar)


@pytest.mark.parametrize("as_sparse", [True, False], ids=["sparse", "dense"])
def test_rerank_scores_are_the_brute_force_cosines_and_all_candidates_give_the_brute_force_lists(as_sparse):
    vectors = wide_sparse(600, 1200, 8)
    vectors = vectors if as_sparse else vectors.toarray()
    users = np.arange(600) * 2 + 5
    unit = unit_rows(vectors)
    rows = np.arange(600)
    rng = np.random.default_rng(9)
    some = np.stack([rng.permutation(600)[:40] for _ in rows])  # 40 random candidates (self may be among them)
    cols, scores = rerank(unit, rows, some, 10, users)
    dense = unit.toarray() if as_sparse else unit
    shown = cols >= 0
    np.testing.assert_allclose(scores[shown], (dense[rows[:, None].repeat(10, 1)] * dense[np.maximum(cols, 0)]).sum(2)[shown], atol=1e-6)
    assert not (cols == rows[:, None]).any()
    everyone = np.tile(np.arange(600), (600, 1))
    cols, scores = rerank(unit, rows, everyone, 10, users)
    assert_matches(Neighbours(users, np.where(cols >= 0, users[np.maximum(cols, 0)], -1), scores), vectors, users, 10)


def test_the_plan_grows_with_users_and_always_takes_more_candidates_than_n():
    options = SearchOptions(method="ann")
    small, large = plan(10_000, 32, 10, options), plan(1_000_000, 32, 10, options)
    assert small.nlist < large.nlist and large.nlist == 4000 and not large.projected
    assert plan(1_000_000, 32, 50, SearchOptions(ann_candidates=20)).candidates == 51
    assert not plan(300_000, 108, 50, options).projected and plan(300_000, 300, 50, options).dims == options.ann_dims


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="not one of exact, ann, auto"):
        SearchOptions(method="fast")


def test_sparse_vectors_with_features_most_users_hold_go_the_dense_way():
    """Walking a feature held by every user costs more than the GEMM, even within a few clusters:
    such vectors (the assessment model's topic part beside its interests) go to the IVF index."""
    from scipy import sparse

    from recommender.search.exact import dense_is_cheaper
    from recommender.topk import prepare_search

    rng = np.random.default_rng(3)
    views = wide_sparse(3000, 2000, 11)
    held_by_all = sparse.csr_matrix(rng.random((3000, 40)).astype(np.float32))
    mixed = sparse.hstack([held_by_all, views], format="csr")
    assert dense_is_cheaper(mixed) and not dense_is_cheaper(views)
    ann = SearchOptions(method="ann", recall_sample=500)
    assert prepare_search(mixed, np.arange(3000), 10, search=ann).plan["index"] == "IVFFlat"
    assert prepare_search(views, np.arange(3000), 10, search=ann).plan["index"] == "clusters"
