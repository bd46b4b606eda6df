"""Sparse user × item matrices built from long tables, without Python loops over rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse


@dataclass(frozen=True)
class UserItemMatrix:
    """A CSR matrix whose row ``i`` belongs to ``users[i]`` (ascending) and column ``j`` to ``items[j]``.

    Users are sorted so that row order equals user_handle order: the top-k search breaks ties by
    row index, and that is then the same as breaking them by user_handle.
    """

    matrix: sparse.csr_matrix
    users: np.ndarray
    items: np.ndarray


def user_item_matrix(
    frame: pd.DataFrame,
    user_col: str,
    item_col: str,
    value_col: str | None = None,
    *,
    binary: bool = False,
) -> UserItemMatrix:
    """Sum ``value_col`` (or count rows) per (user, item); ``binary`` keeps only presence."""
    users, user_codes = np.unique(frame[user_col].to_numpy(), return_inverse=True)
    item_codes, items = pd.factorize(frame[item_col], sort=True)
    if value_col is None:
        values = np.ones(len(frame), dtype=np.float64)
    else:
        values = frame[value_col].to_numpy(dtype=np.float64)
    matrix = sparse.coo_matrix(
        (values, (user_codes.astype(np.int64), item_codes.astype(np.int64))),
        shape=(len(users), len(items)),
    ).tocsr()
    matrix.sum_duplicates()
    if binary:
        matrix.data[:] = 1.0
    return UserItemMatrix(matrix=matrix, users=users.astype(np.int64), items=np.asarray(items))
