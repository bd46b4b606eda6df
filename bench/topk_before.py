"""The top-k search as it was before the exact kernels (commit e7e336b), kept only as ``exact-old`` in bench/bench_search.py.

All-users top-N cosine search, in blocks, with exact tie-breaking by user_handle.

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

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize
from tqdm.auto import tqdm

from recommender.search.neighbours import SCORE_DECIMALS, Neighbours


def _block_rows(n_users: int, block_mb: int, workers: int) -> int:
    # ~24 bytes per cell and worker: float32 scores, their negation, int64 argpartition indices.
    return int(max(1, min(n_users, (block_mb * 2**20) // max(1, 24 * n_users * workers))))


def _select_exact(scores: np.ndarray, n: int) -> np.ndarray:
    """Column indices of the top ``n`` per row (rounded scores), ties at the cut-off to the lowest index."""
    width = scores.shape[1]
    kth = -np.partition(-scores, n - 1, axis=1)[:, n - 1][:, None]  # small kth: see _block_top_k
    columns = np.arange(width, dtype=np.int32)[None, :]
    key = np.where(scores > kth, np.int32(-1), np.where(scores == kth, columns, np.int32(width)))
    return np.argpartition(key, n - 1, axis=1)[:, :n]


def _block_top_k(block: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(columns, rounded scores) of each row's top ``n``, best first, ties by column.

    One ``argpartition`` finds the best ``n + 1`` raw scores.  When, after rounding, the n-th of
    them beats the (n+1)-th, nothing outside can tie with the n-th (rounding is monotonic), so the
    candidates are exact; only rows with a positive tie at the cut-off (rare) take the slower
    exact pass over the whole row.  Zero scores are dropped anyway, so ties among them don't matter.
    """
    width = block.shape[1]
    m = min(n + 1, width)
    # Partition the negated scores around a *small* kth: numpy's introselect is ~20x faster
    # there than around a kth near the end of a row whose values are mostly equal (the zeros of
    # sparse data).
    candidates = np.argpartition(np.negative(block), m - 1, axis=1)[:, :m]
    scores = np.round(np.take_along_axis(block, candidates, axis=1), SCORE_DECIMALS)
    order = np.lexsort((candidates, -scores), axis=-1)
    candidates = np.take_along_axis(candidates, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    if m > n:
        tied = np.flatnonzero((scores[:, n - 1] == scores[:, n]) & (scores[:, n - 1] > 0))
        if tied.size:
            rounded = np.round(block[tied], SCORE_DECIMALS)
            exact = _select_exact(rounded, n)
            exact_scores = np.take_along_axis(rounded, exact, axis=1)
            order = np.lexsort((exact, -exact_scores), axis=-1)
            candidates[tied, :n] = np.take_along_axis(exact, order, axis=1)
            scores[tied, :n] = np.take_along_axis(exact_scores, order, axis=1)
    return candidates[:, :n], scores[:, :n]


def top_k_cosine(vectors, users, n=10, *, block_mb=256, workers=2, progress=False, desc="top-k") -> Neighbours:
    """For every row of ``vectors`` (one per user in ``users``, ascending), its ``n`` most cosine-similar rows.

    Self is excluded; only positive similarities count as neighbours.  ``workers`` threads take
    blocks in turn (the products and partitions release the GIL); memory stays near ``block_mb``.
    """
    users = np.asarray(users, dtype=np.int64)
    count = len(users)
    similar = np.full((count, n), -1, dtype=np.int64)
    result_scores = np.full((count, n), np.nan, dtype=np.float32)
    if count < 2 or n < 1:
        return Neighbours(users, similar, result_scores)
    k = min(n, count - 1)
    is_sparse = sparse.issparse(vectors)
    unit = normalize(sparse.csr_matrix(vectors, dtype=np.float32) if is_sparse else np.asarray(vectors, dtype=np.float32))
    unit_t = unit.T.tocsc() if is_sparse else np.ascontiguousarray(unit.T)
    workers = max(1, workers)
    step = _block_rows(count, block_mb, workers)

    def search(start: int) -> int:
        stop = min(start + step, count)
        block = unit[start:stop] @ unit_t
        block = block.toarray() if sparse.issparse(block) else np.asarray(block)
        block = block.astype(np.float32, copy=False)
        rows = np.arange(stop - start)
        block[rows, rows + start] = -np.inf
        chosen, chosen_scores = _block_top_k(block, k)
        positive = chosen_scores > 0
        similar[start:stop, :k] = np.where(positive, users[chosen], -1)
        result_scores[start:stop, :k] = np.where(positive, chosen_scores, np.nan)
        return stop - start

    starts = range(0, count, step)
    with ThreadPoolExecutor(workers, thread_name_prefix="topk") as pool, \
            tqdm(total=count, desc=desc, unit="user", disable=not progress, leave=False) as bar:
        for done in pool.map(search, starts):
            bar.update(done)
    return Neighbours(users, similar, result_scores)
