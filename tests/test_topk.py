"""The blocked top-k search against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recommender.search.neighbours import SCORE_DECIMALS
from recommender.search.selection import tie_key
from recommender.topk import SearchOptions, top_k_cosine


def brute_force(vectors: np.ndarray, users: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Full N×N cosine (fine for tests), self excluded, sorted by (-stored score, tie key, user_handle)."""
    dense = vectors.toarray() if sparse.issparse(vectors) else np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    unit = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    handles = np.broadcast_to(users, sims.shape)
    ties = tie_key(np.broadcast_to(users[:, None], sims.shape), handles)
    order = np.lexsort((handles, ties, -np.round(sims, SCORE_DECIMALS)), axis=1)[:, :n]
    return users[order], np.take_along_axis(sims, order, axis=1)


def assert_matches(result, vectors, users, n, atol=2e-6):
    expected_ids, expected_scores = brute_force(vectors, users, n)
    positive = expected_scores > 0
    np.testing.assert_allclose(
        np.where(positive, expected_scores, np.nan), result.scores.astype(np.float64), atol=atol, equal_nan=True
    )
    # Identical ids wherever the reference has no near-tie at that position.
    same = (result.similar == np.where(positive, expected_ids, -1))
    gaps = np.abs(np.diff(expected_scores, axis=1))
    near_tie = np.zeros_like(same)
    near_tie[:, 1:] |= gaps < 1e-5
    near_tie[:, :-1] |= gaps < 1e-5
    assert (same | near_tie).all()


@pytest.mark.parametrize("block_mb", [1, 256])
def test_dense_matches_brute_force_whatever_the_block_size(block_mb):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(700, 12)).astype(np.float32)
    users = np.sort(rng.choice(100_000, size=700, replace=False)) + 1
    result = top_k_cosine(vectors, users, 10, search=SearchOptions(block_mb=block_mb))
    assert_matches(result, vectors, users, 10)
    assert not (result.similar == users[:, None]).any(), "a user is never its own neighbour"


def test_sparse_matches_brute_force():
    vectors = sparse.random(900, 300, density=0.03, random_state=3, format="csr")
    users = np.arange(1, 901)
    assert_matches(top_k_cosine(vectors, users, 10, search=SearchOptions(block_mb=1)), vectors, users, 10)


def _by_tie_key(user: int, candidates: np.ndarray, n: int) -> list[int]:
    """The oracle of a tie: the first ``n`` candidates by (tie key of (user, candidate), handle)."""
    candidates = candidates[candidates != user]
    return candidates[np.lexsort((candidates, tie_key(np.full(len(candidates), user), candidates)))][:n].tolist()


def test_ties_are_broken_by_the_tie_key_and_block_size_does_not_matter():
    # 30 identical users and 30 identical others: every neighbour list is an exact tie.
    vectors = np.vstack([np.tile([1.0, 0.0], (30, 1)), np.tile([1.0, 1.0], (30, 1))]).astype(np.float32)
    users = np.arange(10, 70)
    small = top_k_cosine(vectors, users, 5, search=SearchOptions(block_mb=1))
    large = top_k_cosine(vectors, users, 5, search=SearchOptions(block_mb=512))
    np.testing.assert_array_equal(small.similar, large.similar)
    for row in (0, 2, 45):
        group = users[:30] if row < 30 else users[30:]
        assert small.similar[row].tolist() == _by_tie_key(int(users[row]), group, 5)


@pytest.mark.parametrize("as_sparse", [False, True], ids=["dense", "postings"])
def test_many_equal_scores_choose_neighbours_spread_over_the_handles_the_same_on_a_rerun(as_sparse):
    # 2,000 identical users: every list is a 1,999-way tie.  Breaking it by handle gave everyone the
    # lowest handles; the tie key must spread the chosen neighbours over the whole handle range.
    base = np.tile([1.0, 2.0, 0.0], (2000, 1)).astype(np.float32)
    vectors = sparse.csr_matrix(base) if as_sparse else base
    users = np.arange(5000, 7000)
    first = top_k_cosine(vectors, users, 10)
    again = top_k_cosine(vectors, users, 10)
    np.testing.assert_array_equal(first.similar, again.similar)  # deterministic
    chosen = first.similar.ravel()
    # each tenth of the handle range gets about a tenth of the 20,000 picks (not all in the first)
    counts = np.bincount((chosen - 5000) // 200, minlength=10)
    assert counts.min() > 0.08 * chosen.size and counts.max() < 0.12 * chosen.size, counts
    # users do not share one list: most lists differ from each other
    assert len({tuple(row) for row in first.similar.tolist()}) > 1900
    assert first.similar[0].tolist() == _by_tie_key(5000, users, 10)


def test_users_with_nothing_in_common_get_no_neighbours_and_rows_skip_them():
    vectors = sparse.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=np.float32))
    result = top_k_cosine(vectors, np.array([1, 2, 3, 4]), 3)
    assert result.similar[0].tolist() == [2, -1, -1]
    assert result.similar[2].tolist() == [-1, -1, -1]
    assert [row[0] for row in result.rows()] == [1, 2]
    assert result.covered == 2


def test_more_neighbours_asked_than_users_exist():
    result = top_k_cosine(np.eye(3, dtype=np.float32) + 0.1, np.array([1, 2, 3]), 10)
    assert result.similar.shape == (3, 10)
    assert (result.similar[:, :2] > 0).all() and (result.similar[:, 2:] == -1).all()


def test_single_user_has_no_neighbours():
    result = top_k_cosine(np.ones((1, 4)), np.array([7]), 10)
    assert result.covered == 0 and list(result.rows()) == []
