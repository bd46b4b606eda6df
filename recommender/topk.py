"""All-users top-N cosine search, in blocks, with exact tie-breaking by user_handle.

Why blocks: the full N×N similarity matrix does not fit once users reach the hundreds of
thousands, so each block of rows is multiplied against all users, reduced to its top N with
``argpartition`` and thrown away; memory stays at ``block_rows × N`` whatever N is.

Why the tie-breaking dance: ``argpartition`` picks an arbitrary subset among equal scores at the
cut-off, so the result would depend on the BLAS and the block size.  Scores are rounded to 6
decimals (the precision that is stored), the N-th best score per row is found, everything
strictly better is kept and the remaining places go to the lowest-index ties.  Rows are sorted
by user_handle, so the answer is deterministic and the same as a brute-force sort by
``(-score, user_handle)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize
from tqdm.auto import tqdm

SCORE_DECIMALS = 6


@dataclass(frozen=True)
class Neighbours:
    """Top-N answer for all users of one model.

    ``similar[i]`` are the user handles most similar to ``users[i]``, best first; a row with
    fewer than N users of positive similarity is padded with -1 (and NaN scores).
    """

    users: np.ndarray  # (U,) int64
    similar: np.ndarray  # (U, N) int64
    scores: np.ndarray  # (U, N) float32

    def rows(self) -> Iterator[tuple[int, list[int], list[float]]]:
        """(user, neighbours, scores) for every user with at least one neighbour."""
        valid = self.similar >= 0
        for user, ids, scores, ok in zip(self.users, self.similar, self.scores, valid):
            if ok.any():
                yield int(user), ids[ok].tolist(), [round(float(s), SCORE_DECIMALS) for s in scores[ok]]

    @property
    def covered(self) -> int:
        """Users that get at least one neighbour."""
        return int((self.similar[:, 0] >= 0).sum()) if self.similar.size else 0


def _block_rows(n_users: int, block_mb: int) -> int:
    # ~24 bytes per cell: the float32 scores, their rounded copy, the partition copy, an int32 key.
    return int(max(1, min(n_users, (block_mb * 2**20) // max(1, 24 * n_users))))


def _select(scores: np.ndarray, n: int) -> np.ndarray:
    """Column indices of the top ``n`` per row, ties at the cut-off resolved to the lowest index."""
    width = scores.shape[1]
    kth = np.partition(scores, width - n, axis=1)[:, width - n][:, None]
    columns = np.arange(width, dtype=np.int32)[None, :]
    key = np.where(scores > kth, np.int32(-1), np.where(scores == kth, columns, np.int32(width)))
    return np.argpartition(key, n - 1, axis=1)[:, :n]


def top_k_cosine(
    vectors: np.ndarray | sparse.spmatrix,
    users: np.ndarray,
    n: int = 10,
    *,
    block_mb: int = 256,
    progress: bool = False,
    desc: str = "top-k",
) -> Neighbours:
    """For every row of ``vectors`` (one per user in ``users``, ascending), its ``n`` most cosine-similar rows.

    Self is excluded; only positive similarities count as neighbours.
    """
    users = np.asarray(users, dtype=np.int64)
    count = len(users)
    n_out = n
    similar = np.full((count, n_out), -1, dtype=np.int64)
    result_scores = np.full((count, n_out), np.nan, dtype=np.float32)
    if count < 2 or n < 1:
        return Neighbours(users, similar, result_scores)
    n = min(n, count - 1)
    is_sparse = sparse.issparse(vectors)
    unit = normalize(sparse.csr_matrix(vectors, dtype=np.float32) if is_sparse else np.asarray(vectors, dtype=np.float32))
    unit_t = unit.T.tocsc() if is_sparse else np.ascontiguousarray(unit.T)
    step = _block_rows(count, block_mb)
    starts = range(0, count, step)
    for start in tqdm(starts, desc=desc, unit="block", disable=not progress, leave=False):
        stop = min(start + step, count)
        block = unit[start:stop] @ unit_t
        block = block.toarray() if sparse.issparse(block) else np.asarray(block)
        block = np.round(block.astype(np.float32, copy=False), SCORE_DECIMALS)
        rows = np.arange(stop - start)
        block[rows, rows + start] = -np.inf
        chosen = _select(block, n)
        chosen_scores = np.take_along_axis(block, chosen, axis=1)
        order = np.lexsort((chosen, -chosen_scores), axis=-1)
        chosen = np.take_along_axis(chosen, order, axis=1)
        chosen_scores = np.take_along_axis(chosen_scores, order, axis=1)
        positive = chosen_scores > 0
        similar[start:stop, :n] = np.where(positive, users[chosen], -1)
        result_scores[start:stop, :n] = np.where(positive, chosen_scores, np.nan)
    return Neighbours(users, similar, result_scores)
