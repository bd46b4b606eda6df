"""The blocked posting-list kernel and the cluster index of sparse vectors, against exact search and brute force."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import sparse

from recommender.search.clusters import ClusterIndex, cluster_top_k, probe_steps
from recommender.search.exact import exact_top_k, unit_rows
from recommender.search.options import SearchOptions
from recommender.search.postings import RangedPostings, user_ranges
from recommender.search.recall import RecallTooLow, check_recall, recall_at_k
from recommender.search.selection import tie_key
from recommender.topk import top_k_cosine
from tests.test_topk import assert_matches


def communities(users: int, features: int, seed: int, per_user: int = 12, groups: int = 20) -> sparse.csr_matrix:
    """Sparse rows in communities (each draws its features from its own band): neighbours exist."""
    rng = np.random.default_rng(seed)
    community = rng.integers(0, groups, users)
    cols = (community[:, None] * (features // groups) + rng.integers(0, 3 * features // groups, (users, per_user))) % features
    rows = np.repeat(np.arange(users), per_user)
    matrix = sparse.csr_matrix((rng.random(rows.size).astype(np.float32) + 0.1, (rows, cols.ravel())), shape=(users, features))
    matrix.sum_duplicates()
    return matrix


def structureless(users: int, features: int, seed: int, per_user: int = 8) -> sparse.csr_matrix:
    """Random sparse rows with no cluster structure: every user's neighbours are scattered over all clusters."""
    rng = np.random.default_rng(seed)
    cols = np.stack([rng.choice(features, per_user, replace=False) for _ in range(users)]).ravel()
    rows = np.repeat(np.arange(users), per_user)
    return sparse.csr_matrix((rng.random(rows.size).astype(np.float32) + 0.1, (rows, cols)), shape=(users, features))


def _same(first, second) -> None:
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])  # NaN where no neighbour, in both


@pytest.mark.parametrize("signed", [False, True], ids=["non-negative", "signed"])
def test_ranges_of_users_give_the_one_range_answer_bit_for_bit_and_the_brute_force_lists(signed):
    vectors = communities(1500, 400, 1)
    if signed:  # some negative weights: sums can come back to 0
        vectors.data[::3] *= -1
    unit = unit_rows(vectors)
    users = np.arange(1500) * 5 + 2
    queries = np.arange(0, 1500, 7)
    whole = RangedPostings(unit, user_ranges(1500, 1500)).top_k(unit[queries], queries, 10, threads=2)
    for width in (1, 37, 256, 1499):  # ranges of one user, odd widths, a last range of one user
        _same(RangedPostings(unit, user_ranges(1500, width)).top_k(unit[queries], queries, 10, threads=2), whole)
    exact = exact_top_k(vectors, users, 10)
    assert_matches(exact, vectors, users, 10)
    _same((np.where(whole[0] >= 0, users[np.maximum(whole[0], 0)], -1), whole[1]),
          (exact.similar[queries], exact.scores[queries]))


def test_every_cluster_probed_is_the_exact_search_bit_for_bit():
    vectors = communities(3000, 600, 2)
    users = np.sort(np.random.default_rng(3).choice(10**6, 3000, replace=False))
    unit = unit_rows(vectors)
    index = ClusterIndex.build(unit, 16, seed=7)
    assert index.postings.bounds[-1] == 3000 and (np.diff(index.postings.bounds) >= 0).all()
    cols, scores = index.top_k(unit, np.arange(3000), 10, probes=16, threads=2)
    exact = exact_top_k(vectors, users, 10)
    np.testing.assert_array_equal(np.where(cols >= 0, users[np.maximum(cols, 0)], -1), exact.similar)
    np.testing.assert_array_equal(scores, exact.scores)


def test_fewer_probes_only_miss_users_and_every_score_found_is_the_exact_one():
    vectors = communities(3000, 600, 4)
    unit = unit_rows(vectors)
    index = ClusterIndex.build(unit, 32, seed=7)
    cols, scores = index.top_k(unit, np.arange(3000), 10, probes=2, threads=2)
    dense = unit.toarray()
    found = cols >= 0
    rows = np.repeat(np.arange(3000)[:, None], 10, axis=1)
    np.testing.assert_allclose(scores[found], (dense[rows[found]] * dense[cols[found]]).sum(1), atol=2e-6)
    assert not (cols == np.arange(3000)[:, None]).any(), "self is never a neighbour"
    # Ranked by the exact rules: rounded score descending, then the tie key (the ids are the rows here).
    key = np.where(found, -scores, np.inf)
    ties = tie_key(rows, np.maximum(cols, 0))
    assert ((np.diff(key, axis=1) > 0) | ((np.diff(key, axis=1) == 0) & (ties[:, 1:] > ties[:, :-1])) | ~found[:, 1:]).all()


def test_the_cluster_index_reaches_the_floor_on_clustered_data_and_two_runs_publish_the_same_lists():
    vectors = communities(4000, 800, 5)
    users = np.arange(4000) + 10
    options = SearchOptions(method="ann", recall_sample=500, sparse_clusters=16, sparse_probes=4)
    first = cluster_top_k(vectors, users, 10, options=options)
    second = cluster_top_k(vectors, users, 10, options=options)
    np.testing.assert_array_equal(first.similar, second.similar)
    np.testing.assert_array_equal(first.scores, second.scores)
    exact = exact_top_k(vectors, users, 10)
    full = recall_at_k(first.similar, first.scores, exact.similar, exact.scores)
    assert first.method == "ann" and first.recall_at_10 >= 0.95 and full >= 0.95
    assert abs(first.recall_at_10 - full) < 0.03, "the sampled recall estimates the full one"
    assert first.plan == {"index": "clusters", "clusters": 16, "probes": 4}


def test_probe_steps_grow_by_half_up_to_half_the_clusters():
    assert probe_steps(12, 64) == [12, 18, 27, 32]
    assert probe_steps(1, 32) == [1, 2, 3, 4, 6, 9, 13, 16]
    assert probe_steps(40, 64) == [40]
    assert probe_steps(1, 2) == [1]


def test_auto_raises_the_probes_until_the_pilot_reaches_the_floor():
    vectors = communities(4000, 800, 6)
    users = np.arange(4000)
    auto = SearchOptions(method="auto", auto_exact_max_users=100, recall_sample=500, sparse_clusters=32, sparse_probes=1)
    answer = top_k_cosine(vectors, users, 10, search=auto)
    pilot = answer.plan["pilot"]
    assert answer.method == "ann" and answer.recall_at_10 >= 0.95
    assert list(pilot) == probe_steps(1, 32)[:len(pilot)] and len(pilot) > 1, "one probe missed the floor"
    assert all(r < 0.95 for r in list(pilot.values())[:-1]) and answer.plan["probes"] == list(pilot)[-1]
    assert answer.recall_at_10 == pilot[answer.plan["probes"]], "the pilot measured the published answer's sample"


def test_auto_searches_exactly_where_no_probes_reach_the_floor_and_explicit_ann_fails(caplog):
    vectors = structureless(3000, 400, 7)
    users = np.arange(3000) * 2
    auto = SearchOptions(method="auto", auto_exact_max_users=100, recall_sample=500, sparse_clusters=32, sparse_probes=2)
    with caplog.at_level(logging.WARNING, logger="recommender.search.clusters"):
        answer = top_k_cosine(vectors, users, 10, search=auto)
    assert answer.method == "exact" and answer.recall_at_10 == 1.0
    assert answer.plan["fallback"] == "exact" and max(answer.plan["pilot"].values()) < 0.95
    assert list(answer.plan["pilot"]) == probe_steps(2, 32)
    assert "under MIN_RECALL=0.95; searching exactly" in caplog.text
    exact = exact_top_k(vectors, users, 10)
    np.testing.assert_array_equal(answer.similar, exact.similar)
    np.testing.assert_array_equal(answer.scores, exact.scores)
    # The same setting asked for explicitly is judged by the recall check, and refused.
    explicit = top_k_cosine(vectors, users, 10, search=SearchOptions(
        method="ann", recall_sample=500, sparse_clusters=32, sparse_probes=2))
    assert explicit.method == "ann" and explicit.recall_at_10 < 0.95
    with pytest.raises(RecallTooLow):
        check_recall("m", explicit.recall_at_10, 0.95)
