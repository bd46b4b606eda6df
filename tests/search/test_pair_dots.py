"""Pair dots (the compiled home the ensemble and the re-rank share) against scipy and numpy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recommender.search.pair_dots import pair_dots


def matrix(rows: int = 300, cols: int = 40, seed: int = 5) -> sparse.csr_matrix:
    m = sparse.random(rows, cols, density=0.15, format="csr", random_state=seed)
    m[7] = 0  # a row without entries
    m.eliminate_zeros()
    return m


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("grouped", [True, False])
def test_sparse_pair_dots_equal_scipy(dtype, grouped):
    m = matrix()
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, m.shape[0], 5000), rng.integers(0, m.shape[0], 5000)
    a[:40] = 7
    if grouped:  # a user's candidates given together, as the ensemble gives them
        a = np.sort(a)
    expected = np.asarray(m[a].multiply(m[b]).sum(axis=1)).ravel()
    got = pair_dots(m, a, b, dtype)
    assert got.dtype == dtype and got.shape == (5000,)
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_rows_by_candidates_and_dense_vectors_equal_numpy():
    m = matrix()
    dense = m.toarray()
    rng = np.random.default_rng(2)
    rows, cols = rng.integers(0, 300, 200), rng.integers(0, 300, (200, 9))
    expected = np.einsum("id,icd->ic", dense[rows], dense[cols])
    np.testing.assert_allclose(pair_dots(m, rows, cols), expected, atol=1e-12)
    np.testing.assert_allclose(pair_dots(dense, rows, cols), expected, atol=1e-12)


def test_duplicate_entries_of_a_row_are_added_up():
    # (row 0, column 1) stored twice: 1 + 2; a CSR matrix not in canonical form must still be right
    m = sparse.csr_matrix((np.array([1.0, 2.0, 4.0, 3.0]), np.array([1, 1, 0, 1]), np.array([0, 3, 4])), shape=(2, 3))
    assert not m.has_canonical_format
    np.testing.assert_allclose(pair_dots(m, np.array([0, 0, 1]), np.array([1, 0, 1])), [3 * 3, 9 + 16, 9])
