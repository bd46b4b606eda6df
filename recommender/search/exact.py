"""Exact all-users cosine top-N, memory linear in users (never N×N).

Two kernels, picked by cost:

- dense vectors (the DNN's 32-d embeddings, factor models): blocks of users multiplied against
  all users by the BLAS (float32 GEMM), each block reduced to its top N by
  :func:`~recommender.search.selection.select_top_k`;
- sparse vectors (TF-IDF interests, BM25 views): posting lists walked in compiled code, range of
  users after range of users (:mod:`recommender.search.postings`), whose cost follows the non-zeros.  A dense GEMM of the
  interest model's tags does far more multiply-adds than there are non-zero products, which the
  BLAS's speed per multiply-add does not make up for; a sparse matrix
  dense enough that it would (:func:`dense_is_cheaper`) is made dense and goes the BLAS way.

Both rank by score rounded to the stored precision, then by the seeded hash of the (user,
neighbour) handles (:func:`~recommender.search.selection.tie_key`), so the answer equals a
brute-force sort by ``(-score, tie_key, user_handle)``.  The dense copy of the candidates is bounded by
``dense_mb``: above it the candidates come in tiles whose partial answers are merged.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from recommender.search.neighbours import Neighbours, Search, empty_answer
from recommender.search.options import SearchOptions
from recommender.search.postings import RangedPostings, user_ranges
from recommender.search.selection import chunk_width, merge_top_k, padded, select_top_k

#: Multiply-adds the BLAS does in the time the posting-list kernel does one scattered
#: multiply-add (an order of magnitude for an AVX2 core; it only picks the kernel).
BLAS_ADVANTAGE = 100
KERNELS = ("auto", "dense", "postings")
#: Bytes per cell of a block of dense scores: float32 scores plus the selection's temporaries.
_CELL_BYTES = 8
#: Queries per call of the posting-list kernel (the progress bar moves once per call).
_POSTINGS_BLOCK = 8192
#: Sparse vectors at least this full are dense in content (every user holds most features).
_DENSE_CONTENT = 0.5


def unit_rows(vectors: np.ndarray | sparse.spmatrix) -> np.ndarray | sparse.csr_matrix:
    """Rows scaled to unit length, float32 (zero rows stay zero)."""
    if sparse.issparse(vectors):
        unit = normalize(sparse.csr_matrix(vectors, dtype=np.float32))
        unit.sort_indices()
        return unit
    return np.ascontiguousarray(normalize(np.asarray(vectors, dtype=np.float32)))


def dense_is_cheaper(unit: sparse.csr_matrix) -> bool:
    """Whether a dense GEMM beats walking posting lists for these sparse vectors.

    Posting lists cost, over all users, the sum over features of (users holding it)²; a GEMM
    costs users² × features multiply-adds, each ``BLAS_ADVANTAGE`` times cheaper.
    """
    users, features = unit.shape
    holders = np.bincount(unit.indices, minlength=features).astype(np.float64)
    return float(users) * users * features / BLAS_ADVANTAGE < float((holders**2).sum())


def sparse_content(unit: np.ndarray | sparse.spmatrix) -> bool:
    """Whether vectors are sparse in content, not only in storage (the assessment percentiles are held
    by every user): the cluster index searches these, the IVF index the others."""
    return sparse.issparse(unit) and unit.nnz < _DENSE_CONTENT * unit.shape[0] * unit.shape[1]


def postings_per_user(vectors: sparse.spmatrix) -> float:
    """Accumulations per query of the posting-list kernel: the sum over features of (users holding
    it)², over users.  It stays small as users grow when each feature is held by few users (course
    views), and grows with the users when features are shared widely (interest tags)."""
    holders = np.bincount(sparse.csr_matrix(vectors).indices, minlength=vectors.shape[1]).astype(np.float64)
    return float((holders**2).sum()) / max(1, vectors.shape[0])


class _Tile:
    """Candidate users ``start:stop`` as a dense (features × users) view, zero-padded to whole chunks."""

    def __init__(self, unit: np.ndarray | sparse.csr_matrix, start: int, stop: int):
        self.start, self.stop = start, stop
        part = unit[start:min(stop, unit.shape[0])]
        part = part.toarray() if sparse.issparse(part) else part
        if part.shape[0] < stop - start:
            part = np.vstack([part, np.zeros((stop - start - part.shape[0], unit.shape[1]), dtype=np.float32)])
        self.matrix = part.T  # the BLAS takes the transposed view as is

    def scores(self, queries: np.ndarray, query_index: np.ndarray) -> np.ndarray:
        """Cosine of each query row with the tile's users, float32; self set to -inf."""
        block = np.asarray(queries @ self.matrix, dtype=np.float32)
        inside = (query_index >= self.start) & (query_index < self.stop)
        block[np.flatnonzero(inside), query_index[inside] - self.start] = -np.inf
        return block


def _tile_users(count: int, features: int, width: int, dense_mb: int) -> int:
    """Candidate users per tile: all of them (padded) unless their dense copy exceeds ``dense_mb``."""
    per_tile = (dense_mb * 2**20) // (4 * max(1, features))
    return min(padded(count, width), max(width, (per_tile // width) * width))


def dense_block_rows(count: int, features: int, n: int, block_mb: int, dense_mb: int) -> int:
    """Queries per block of the dense kernel: one block of scores fills ``block_mb``.

    It depends on neither the number of workers nor the queries asked, so a search split into
    parts on multiples of it (the Dask engine) multiplies the very same blocks as the local one,
    and the single-threaded BLAS gives the same floats.
    """
    k = min(n, count - 1)
    tile_users = _tile_users(count, features, chunk_width(count, k), dense_mb)
    return int(max(1, (block_mb * 2**20) // (_CELL_BYTES * tile_users)))


def _tiles(unit, count: int, width: int, dense_mb: int) -> Iterator[_Tile]:
    """Candidate tiles covering all users; one tile unless the dense copy exceeds ``dense_mb``."""
    step = _tile_users(count, unit.shape[1], width, dense_mb)
    for start in range(0, padded(count, width), step):
        yield _Tile(unit, start, min(start + step, padded(count, width)))


def _dense_search(unit, ids: np.ndarray, query_index: np.ndarray, k: int, *, block_mb: int, dense_mb: int,
                  workers: int, bar: tqdm):
    """(columns, scores) of the top ``k`` per query by blocked GEMM + chunk-threshold selection;
    ``ids``: the users' handles (ties)."""
    count = unit.shape[0]
    width = chunk_width(count, k)
    tiles = list(_tiles(unit, count, width, dense_mb))
    padded_ids = np.r_[ids, np.full(padded(count, width) - count, -1, dtype=np.int64)]  # padding never scores
    step = dense_block_rows(count, unit.shape[1], k, block_mb, dense_mb)
    cols = np.full((query_index.size, k), -1, dtype=np.int64)
    found = np.full((query_index.size, k), np.nan, dtype=np.float32)

    def search(tile: _Tile, start: int) -> int:
        index = query_index[start:start + step]
        queries = unit[index]
        queries = queries.toarray() if sparse.issparse(queries) else queries
        part = select_top_k(tile.scores(queries, index), k, width, ids[index], padded_ids[tile.start:tile.stop])
        part = (np.where(part[0] >= 0, part[0] + tile.start, -1), part[1])
        if len(tiles) > 1:
            part = merge_top_k((cols[start:start + step], found[start:start + step]), part, k, ids[index], ids)
        cols[start:start + step], found[start:start + step] = part
        return index.size

    # One BLAS thread per worker: two BLAS thread pools on two cores would fight, and a
    # single-threaded GEMM gives the same floats however the work is spread.
    with threadpool_limits(1), ThreadPoolExecutor(workers, thread_name_prefix="topk") as pool:
        for tile in tiles:
            for done in pool.map(lambda start: search(tile, start), range(0, query_index.size, step)):
                bar.update(done / len(tiles))
    return cols, found


def _postings_search(unit: sparse.csr_matrix, ids: np.ndarray, query_index: np.ndarray, k: int, *, workers: int,
                     bar: tqdm):
    """(columns, scores) of the top ``k`` per query by the blocked posting-list kernel (ranges of users);
    ``ids``: the users' handles (ties)."""
    postings = RangedPostings(unit, user_ranges(unit.shape[0]), ids=ids)
    parts = []
    for start in range(0, query_index.size, _POSTINGS_BLOCK):
        index = query_index[start:start + _POSTINGS_BLOCK]
        parts.append(postings.top_k(unit[index], index, k, workers))
        bar.update(index.size)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def exact_top_k(
    vectors: np.ndarray | sparse.spmatrix,
    users: np.ndarray,
    n: int = 10,
    *,
    rows: np.ndarray | None = None,
    block_mb: int = SearchOptions.block_mb,
    dense_mb: int = SearchOptions.dense_mb,
    workers: int = 2,
    progress: bool = False,
    desc: str = "top-k",
    kernel: str = "auto",
) -> Neighbours:
    """Every query user's ``n`` most cosine-similar users, exactly; self excluded, positive only.

    ``rows`` (indices into ``users``) restricts the queries (the recall check searches a sample);
    the answer then has one row per query, in that order.  Memory stays near
    ``dense_mb + workers × block_mb`` for dense vectors, and near the vectors plus one accumulator of
    users per worker for sparse ones.  ``kernel`` ("auto", "dense", "postings") forces a kernel
    (tests, benchmarks); "postings" needs sparse vectors.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel {kernel!r} is not one of {', '.join(KERNELS)}")
    users = np.asarray(users, dtype=np.int64)
    count = len(users)
    query_index = np.arange(count) if rows is None else np.asarray(rows, dtype=np.int64)
    similar, scores = empty_answer(query_index, n)
    if count < 2 or n < 1 or query_index.size == 0:
        return Neighbours(users[query_index], similar, scores)
    k = min(n, count - 1)
    unit = unit_rows(vectors)
    workers = max(1, workers)
    with tqdm(total=query_index.size, desc=desc, unit="user", disable=not progress, leave=False) as bar:
        if kernel == "postings" or (kernel == "auto" and sparse.issparse(unit) and not dense_is_cheaper(unit)):
            cols, found = _postings_search(unit, users, query_index, k, workers=workers, bar=bar)
        else:
            cols, found = _dense_search(unit, users, query_index, k, block_mb=block_mb, dense_mb=dense_mb, workers=workers, bar=bar)
    similar[:, :k] = np.where(cols >= 0, users[np.maximum(cols, 0)], -1)
    scores[:, :k] = found
    return Neighbours(users[query_index], similar, scores)


class ExactSearch(Search):
    """The exact search of one model's vectors, asked for any rows (:class:`~recommender.search.neighbours.Search`).

    Nothing is prepared: each query walks all users with :func:`exact_top_k`, whose answer for a
    row does not depend on the other rows asked with it."""

    def __init__(self, vectors: np.ndarray | sparse.spmatrix, users: np.ndarray, n: int, *,
                 block_mb: int = SearchOptions.block_mb, dense_mb: int = SearchOptions.dense_mb,
                 plan: dict | None = None):
        self.vectors, self.users, self.n = vectors, np.asarray(users, dtype=np.int64), n
        self.block_mb, self.dense_mb, self.plan = block_mb, dense_mb, plan
        self.align = dense_block_rows(len(self.users), vectors.shape[1], n, block_mb, dense_mb) if len(self.users) > 1 else 1

    def query(self, rows: np.ndarray, threads: int = 2, *, progress: bool = False, desc: str = "top-k") -> Neighbours:
        return exact_top_k(self.vectors, self.users, self.n, rows=rows, block_mb=self.block_mb, dense_mb=self.dense_mb,
                           workers=threads, progress=progress, desc=desc)
