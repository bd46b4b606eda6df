"""Both exact kernels (dense GEMM and posting lists) against the brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recommender.search.exact import dense_is_cheaper, exact_top_k, unit_rows
from tests.test_topk import _by_tie_key, assert_matches


def sparse_vectors(users: int, features: int, density: float, seed: int) -> sparse.csr_matrix:
    return sparse.random(users, features, density=density, random_state=seed, format="csr", dtype=np.float32)


def test_which_kernel_follows_the_cost():
    assert not dense_is_cheaper(unit_rows(sparse_vectors(2000, 750, 0.036, 1)))  # like the interest model
    assert dense_is_cheaper(unit_rows(sparse_vectors(2000, 20, 0.6, 1)))


@pytest.mark.parametrize("density, features", [(0.036, 750), (0.002, 5000), (0.6, 20)], ids=["tfidf-like", "views-like", "dense-enough"])
@pytest.mark.parametrize("kernel", ["auto", "dense", "postings"])
def test_sparse_vectors_match_brute_force_on_either_kernel(density, features, kernel):
    vectors = sparse_vectors(1200, features, density, 5)
    users = np.arange(3, 1203) * 7
    result = exact_top_k(vectors, users, 10, kernel=kernel)
    assert_matches(result, vectors, users, 10)
    assert not (result.similar == users[:, None]).any()


@pytest.mark.parametrize("dense_mb, block_mb", [(1024, 256), (0, 1)], ids=["one-tile", "many-tiles-and-blocks"])
def test_dense_tiles_and_blocks_do_not_change_the_answer(dense_mb, block_mb):
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(1500, 32)).astype(np.float32)
    users = np.sort(rng.choice(10**6, size=1500, replace=False)) + 1
    result = exact_top_k(vectors, users, 10, dense_mb=dense_mb, block_mb=block_mb)
    assert_matches(result, vectors, users, 10)
    reference = exact_top_k(vectors, users, 10)
    np.testing.assert_array_equal(result.similar, reference.similar)


@pytest.mark.parametrize("as_sparse, dense_mb", [(False, 0), (False, 1024), (True, 1024)], ids=["dense-tiles", "dense", "postings"])
def test_exact_ties_go_by_the_tie_key_on_both_kernels(as_sparse, dense_mb):
    # 200 identical users and 200 others: every list is a tie far wider than n, across tiles.
    base = np.vstack([np.tile([1.0, 0.0, 0.0], (200, 1)), np.tile([0.0, 1.0, 1.0], (200, 1))]).astype(np.float32)
    vectors = sparse.csr_matrix(base) if as_sparse else base
    users = np.arange(1000, 1400)
    result = exact_top_k(vectors, users, 5, dense_mb=dense_mb, kernel="postings" if as_sparse else "dense")
    for row in (0, 3, 399):
        assert result.similar[row].tolist() == _by_tie_key(int(users[row]), users[:200] if row < 200 else users[200:], 5)
    np.testing.assert_allclose(result.scores, 1.0)


@pytest.mark.parametrize("as_sparse", [False, True], ids=["dense", "postings"])
def test_a_sample_of_queries_gets_the_same_rows_as_the_full_search(as_sparse):
    vectors = sparse_vectors(800, 60, 0.1, 9)
    vectors = vectors if as_sparse else vectors.toarray()
    users = np.arange(1, 801)
    rows = np.array([5, 799, 0, 400])
    kernel = "postings" if as_sparse else "dense"
    full = exact_top_k(vectors, users, 10, kernel=kernel)
    sample = exact_top_k(vectors, users, 10, rows=rows, kernel=kernel)
    np.testing.assert_array_equal(sample.users, users[rows])
    np.testing.assert_array_equal(sample.similar, full.similar[rows])
    np.testing.assert_array_equal(sample.scores, full.scores[rows])


def test_a_sum_that_comes_back_to_zero_lists_its_user_once_on_the_postings_kernel():
    """Negative weights: user 2's sum with user 1 goes 1/3, 0, 1/3 over the three shared features.
    The kernel keeps a mark per touched user for signed vectors (non-negative ones go without it,
    taking a sum's first non-zero value as the mark), so user 2 is listed once, not twice."""
    # 30 more users that share nothing with the first two: enough users that the kernel reads back
    # only the users a query touched (it reads the whole accumulator when they are most of it).
    rows = [[1, 1, 1, 0], [1, -1, 1, 0]] + [[0, 0, 0, 1]] * 30
    vectors = sparse.csr_matrix(np.array(rows, dtype=np.float32))
    result = exact_top_k(vectors, np.arange(1, 33), 2, kernel="postings")
    assert result.similar[:2].tolist() == [[2, -1], [1, -1]]
    np.testing.assert_allclose(result.scores[:2, 0], 1 / 3, atol=1e-6)


def test_only_positive_similarities_are_neighbours_on_the_postings_kernel():
    vectors = sparse.csr_matrix(np.array([[1, 0, 0], [1, -1, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    result = exact_top_k(vectors, np.array([1, 2, 3, 4]), 3, kernel="postings")
    assert result.similar.tolist() == [[2, -1, -1], [1, -1, -1], [-1, -1, -1], [-1, -1, -1]]
