"""Each row's top k of a block of scores, exact to the stored precision, ties by column.

Why not ``argpartition`` over the whole row: a row holds a score per user, and numpy's
introselect over it costs more than the product that made it.  Instead each row
is cut into chunks of ``width`` columns and the chunk maxima (one vectorised reduction) give a
threshold: the (k+1)-th largest chunk maximum is a real score with at least k others at or
above it, so every score of the top k is at or above it too.  Only chunks whose maximum reaches
the threshold (about k+1 of them per row) are gathered and searched.  Scores are rounded to
:data:`SCORE_DECIMALS` before ranking and the threshold is lowered by the rounding step, so every
score that *rounds* to the k-th best is a candidate and ties are broken exactly by :func:`tie_key`,
whatever the BLAS or the block size.

Ties are not a ranking: many users share a stored score (one assessment at the same level, the same
few interests), and breaking them by user_handle gave every such user the same low-numbered
neighbours.  Equal stored scores are ordered by :func:`tie_key` of the (user, neighbour) handles, a
seeded hash: deterministic, different for every user, and favouring no range of handles.  Every
kernel (this selection, the posting lists, the re-rank, the ensemble) orders by (score desc,
tie_key asc, handle asc).
"""

from __future__ import annotations

import numba
import numpy as np

from recommender.search.neighbours import SCORE_DECIMALS

#: Preferred chunk width: small enough that ~k+1 gathered chunks are cheap, large enough that the
#: chunk maxima are a small fraction of the block.
CHUNK_WIDTH = 64
#: Lower the threshold by two rounding steps: a score that rounds to the k-th best may sit up to
#: half a step under it, and the float32 threshold itself up to half a step over.
_SLACK = 2 * 10.0**-SCORE_DECIMALS
#: Smallest raw score that can round to a positive stored score.
_FLOOR = 0.4 * 10.0**-SCORE_DECIMALS
#: Gathered scores held at once (float32): bounds memory when many rows tie at the cut-off.
_GATHER_CAP = 1 << 22


#: The seed of :func:`tie_key` (fixed: published lists must not change between runs).
TIE_SEED = 0x632BE59BD9B4E019


@numba.vectorize(["uint64(int64, int64)"], cache=True)
def tie_key(user, neighbour):  # pragma: no cover - compiled
    """The order of ``neighbour`` among ``user``'s equally scored neighbours (lower first): a seeded
    64-bit hash (SplitMix64's finaliser, applied twice) of the handle pair.  A ufunc: numpy arrays
    and the compiled kernels call the same code."""
    z = np.uint64(user) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(TIE_SEED)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = (z ^ (z >> np.uint64(31))) + np.uint64(neighbour) * np.uint64(0xD6E8FEB86659FD93)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def chunk_width(columns: int, k: int) -> int:
    """Chunk width for rows of ``columns`` scores: at least k+1 chunks, so the threshold exists."""
    return int(max(1, min(CHUNK_WIDTH, columns // (k + 1))))


def padded(columns: int, width: int) -> int:
    """Columns rounded up to whole chunks (callers pad with zero vectors: score 0 is never kept)."""
    return -(-columns // width) * width


def rank_candidates(
    rows: np.ndarray, cols: np.ndarray, scores: np.ndarray, n_rows: int, k: int,
    row_ids: np.ndarray, col_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` per row of (row, column, rounded score) candidates, by (-score, tie_key, column);
    ``row_ids`` / ``col_ids`` are the handles of the rows and columns (what :func:`tie_key` hashes).

    Returns (columns, scores) of shape (n_rows, k), padded with -1 / NaN.  Candidates must be
    positive and unique per (row, column).
    """
    out_cols = np.full((n_rows, k), -1, dtype=np.int64)
    out_scores = np.full((n_rows, k), np.nan, dtype=np.float32)
    if rows.size == 0:
        return out_cols, out_scores
    ties = tie_key(np.asarray(row_ids, dtype=np.int64)[rows], np.asarray(col_ids, dtype=np.int64)[cols])
    order = np.lexsort((cols, ties, -scores, rows))
    rows, cols, scores = rows[order], cols[order], scores[order]
    rank = np.arange(rows.size) - np.searchsorted(rows, rows, side="left")
    keep = rank < k
    out_cols[rows[keep], rank[keep]] = cols[keep]
    out_scores[rows[keep], rank[keep]] = scores[keep]
    return out_cols, out_scores


def select_top_k(block: np.ndarray, k: int, width: int, row_ids: np.ndarray, col_ids: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(columns, rounded scores) of each row's top ``k`` positive scores, best first, ties by
    :func:`tie_key` of (``row_ids[row]``, ``col_ids[column]``), the handles.

    ``block`` is (rows, columns) float32 with ``columns`` a multiple of ``width``; excluded
    cells (self) hold -inf.
    """
    n_rows, columns = block.shape
    n_chunks = columns // width
    chunks = block.reshape(n_rows, n_chunks, width)
    maxima = chunks.max(axis=2)
    if n_chunks > k:
        threshold = np.partition(maxima, n_chunks - k - 1, axis=1)[:, n_chunks - k - 1]
        lower = np.maximum(threshold - _SLACK, _FLOOR).astype(np.float32)
    else:  # fewer chunks than k+1: every positive score is a candidate
        lower = np.full(n_rows, _FLOOR, dtype=np.float32)
    hot = maxima >= lower[:, None]
    # Rows in groups whose gathered chunks stay under the cap (one group unless many rows tie).
    ends = np.cumsum(hot.sum(axis=1, dtype=np.int64) * width)
    found_rows, found_cols, found_scores = [], [], []
    start = 0
    while start < n_rows:
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + _GATHER_CAP, side="right")))
        r, c = np.nonzero(hot[start:stop])
        r += start
        gathered = chunks[r, c]
        hit_row, hit_col = np.nonzero(gathered >= lower[r][:, None])
        found_rows.append(r[hit_row])
        found_cols.append(c[hit_row].astype(np.int64) * width + hit_col)
        found_scores.append(np.round(gathered[hit_row, hit_col], SCORE_DECIMALS))
        start = stop
    rows, cols, scores = (np.concatenate(parts) for parts in (found_rows, found_cols, found_scores))
    positive = scores > 0
    return rank_candidates(rows[positive], cols[positive], scores[positive], n_rows, k, row_ids, col_ids)


def merge_top_k(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], k: int,
    row_ids: np.ndarray, col_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of two partial answers over disjoint columns (tiles of candidates), same order rules."""
    cols = np.concatenate([first[0], second[0]], axis=1)
    scores = np.concatenate([first[1], second[1]], axis=1)
    rows, slot = np.nonzero(cols >= 0)
    return rank_candidates(rows, cols[rows, slot], scores[rows, slot], cols.shape[0], k, row_ids, col_ids)
