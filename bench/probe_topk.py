#!/usr/bin/env python
"""Prototype for the top-k search (not run by ``make bench``). It runs the tree's
``recommender.topk.top_k_cosine`` against the same search with a *sparse shortcut*, on the same
vectors in the same process, and checks that the answers are identical (handles and scores).

    .venv/bin/python bench/probe_topk.py --data-dir bench/out/data-10000 [--models a,b] [--out FILE]

The shortcut: for a sparse model the product of a block of users with all users is itself a
sparse matrix. The cells it does not store are exact zeros, and a zero is never a neighbour
(only positive similarities count). So the candidates of a row are its stored entries. When a
block's product is sparse enough (density below ``--max-density``, default 5%: the view model's
is ~3%), the shortcut never densifies the block. It rounds the stored scores as the dense path
does, drops self and non-positive ones, sorts by (row, -score, column) and keeps the first n of
each row. The ties come out as in the brute-force order (-score, user_handle), by construction.
That is O(stored entries) instead of O(block rows x all users) for ``toarray`` and the partition.
Denser blocks (the interest model's product is ~69% full) go through the tree's own dense path
unchanged.

``--profile`` also times the steps of the tree's block loop (one worker): product, densify,
select.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from scipy import sparse  # noqa: E402
from sklearn.preprocessing import normalize  # noqa: E402

from recommender import topk  # noqa: E402
from recommender.data.loader import load_tables  # noqa: E402
from recommender.models.registry import create_model  # noqa: E402


def _sparse_block_top(block: sparse.csr_matrix, start: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top ``n`` per row straight from a sparse block's stored entries: (row, column, score, rank)."""
    rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
    cols = block.indices
    vals = np.round(block.data.astype(np.float32, copy=False), topk.SCORE_DECIMALS)
    keep = (vals > 0) & (cols != rows + start)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    keep = rank < n
    return rows[keep], cols[keep], vals[keep], rank[keep]


def _dense_block_top(block: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The tree's own dense selection (``_block_top_k``), else an exact sort-based fallback."""
    if hasattr(topk, "_block_top_k"):
        return topk._block_top_k(block, n)
    rounded = np.round(block, topk.SCORE_DECIMALS)
    columns = np.broadcast_to(np.arange(block.shape[1]), block.shape)
    order = np.lexsort((columns, -rounded), axis=-1)[:, :n]
    return order, np.take_along_axis(rounded, order, axis=1)


def _workers_and_step(count: int, block_mb: int) -> tuple[int, int]:
    workers = inspect.signature(topk.top_k_cosine).parameters.get("workers")
    workers = workers.default if workers is not None else 1
    params = inspect.signature(topk._block_rows).parameters
    step = topk._block_rows(count, block_mb, workers) if len(params) >= 3 else topk._block_rows(count, block_mb)
    return workers, step


def top_k_cosine_sparse_shortcut(vectors, users, n=10, *, block_mb=256, max_density=0.05, dense_rhs_mb=0) -> topk.Neighbours:
    """The tree's ``top_k_cosine`` (same workers, same block size) plus the sparse shortcut.

    ``dense_rhs_mb`` > 0: for sparse vectors whose product is dense (above ``max_density`` on the
    first block) and whose transposed unit matrix fits in that many MB as float32, multiply each
    sparse block by a *dense* right-hand side (scipy's CSR x dense kernel) instead of building a
    sparse product and densifying it."""
    users = np.asarray(users, dtype=np.int64)
    count = len(users)
    similar = np.full((count, n), -1, dtype=np.int64)
    result_scores = np.full((count, n), np.nan, dtype=np.float32)
    if count < 2 or n < 1:
        return topk.Neighbours(users, similar, result_scores)
    k = min(n, count - 1)
    is_sparse = sparse.issparse(vectors)
    unit = normalize(sparse.csr_matrix(vectors, dtype=np.float32) if is_sparse else np.asarray(vectors, dtype=np.float32))
    unit_t = unit.T.tocsc() if is_sparse else np.ascontiguousarray(unit.T)
    workers, step = _workers_and_step(count, block_mb)
    rhs = unit_t
    if is_sparse and dense_rhs_mb and unit.shape[1] * count * 4 <= dense_rhs_mb * 2**20:
        first = unit[:step] @ unit_t
        if first.nnz > max_density * first.shape[0] * first.shape[1]:
            rhs = unit_t.toarray()  # (features, users) float32, C order: the kernel streams its rows

    def search(start: int) -> None:
        stop = min(start + step, count)
        block = unit[start:stop] @ rhs
        if sparse.issparse(block) and block.nnz <= max_density * block.shape[0] * block.shape[1]:
            rows, cols, vals, rank = _sparse_block_top(block.tocsr(), start, k)
            similar[start + rows, rank] = users[cols]
            result_scores[start + rows, rank] = vals
            return
        block = (block.toarray() if sparse.issparse(block) else np.asarray(block)).astype(np.float32, copy=False)
        r = np.arange(stop - start)
        block[r, r + start] = -np.inf
        chosen, chosen_scores = _dense_block_top(block, k)
        positive = chosen_scores > 0
        similar[start:stop, :k] = np.where(positive, users[chosen], -1)
        result_scores[start:stop, :k] = np.where(positive, chosen_scores, np.nan)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(search, range(0, count, step)))
    return topk.Neighbours(users, similar, result_scores)


def profile(vectors, users, n=10, block_mb=256) -> dict:
    """Seconds per step of the tree's block loop, one worker, summed over blocks."""
    t = dict.fromkeys(("product", "densify", "select"), 0.0)
    count = len(users)
    is_sparse = sparse.issparse(vectors)
    unit = normalize(sparse.csr_matrix(vectors, dtype=np.float32) if is_sparse else np.asarray(vectors, dtype=np.float32))
    unit_t = unit.T.tocsc() if is_sparse else np.ascontiguousarray(unit.T)
    _, step = _workers_and_step(count, block_mb)
    for start in range(0, count, step):
        stop = min(start + step, count)
        t0 = time.perf_counter(); block = unit[start:stop] @ unit_t; t["product"] += time.perf_counter() - t0
        t0 = time.perf_counter(); block = (block.toarray() if sparse.issparse(block) else np.asarray(block)).astype(np.float32, copy=False); t["densify"] += time.perf_counter() - t0
        r = np.arange(stop - start)
        block[r, r + start] = -np.inf
        t0 = time.perf_counter(); _dense_block_top(block, min(n, count - 1)); t["select"] += time.perf_counter() - t0
    return {"block_rows": step, **{key: round(v, 3) for key, v in t.items()}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--models", default="tfidf_user_interest,knn_collab_filtering_user_course_view")
    p.add_argument("--block-mb", type=int, default=256)
    p.add_argument("--max-density", type=float, default=0.05)
    p.add_argument("--dense-rhs-mb", type=int, default=512,
                   help="also try a dense right-hand side for dense products of sparse vectors up to this size (0: no)")
    p.add_argument("--no-shortcut", action="store_true", help="skip the sparse-shortcut variant")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = p.parse_args()
    commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", "recommender/topk.py"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    tables = load_tables(args.data_dir)
    out = {}
    for handle in args.models.split(","):
        vectors, users = create_model(handle).fit(tables).user_vectors()
        entry: dict = {"users": len(users), "topk_commit": commit, "workers": _workers_and_step(len(users), args.block_mb)[0]}
        if sparse.issparse(vectors):
            head = normalize(sparse.csr_matrix(vectors[:500], dtype=np.float32))
            entry["product_density"] = round((head @ normalize(sparse.csr_matrix(vectors, dtype=np.float32)).T).nnz / (head.shape[0] * len(users)), 4)
        t0 = time.perf_counter(); before = topk.top_k_cosine(vectors, users, 10, block_mb=args.block_mb)
        entry["current_seconds"] = round(time.perf_counter() - t0, 3)
        if not args.no_shortcut:
            t0 = time.perf_counter(); after = top_k_cosine_sparse_shortcut(vectors, users, 10, block_mb=args.block_mb, max_density=args.max_density)
            entry["sparse_shortcut_seconds"] = round(time.perf_counter() - t0, 3)
            entry["speedup"] = round(entry["current_seconds"] / entry["sparse_shortcut_seconds"], 2)
            entry["identical"] = bool(np.array_equal(before.similar, after.similar) and np.array_equal(before.scores, after.scores, equal_nan=True))
        if sparse.issparse(vectors) and args.dense_rhs_mb:
            t0 = time.perf_counter()
            dense = top_k_cosine_sparse_shortcut(vectors, users, 10, block_mb=args.block_mb, max_density=args.max_density,
                                                 dense_rhs_mb=args.dense_rhs_mb)
            entry["dense_rhs_seconds"] = round(time.perf_counter() - t0, 3)
            entry["dense_rhs_speedup"] = round(entry["current_seconds"] / entry["dense_rhs_seconds"], 2)
            same_ids = before.similar == dense.similar
            entry["dense_rhs_identical"] = bool(same_ids.all() and np.array_equal(before.scores, dense.scores, equal_nan=True))
            entry["dense_rhs_rows_differing"] = int((~same_ids.all(axis=1)).sum())
            entry["dense_rhs_max_score_diff"] = float(np.nanmax(np.abs(before.scores - dense.scores)))
        if args.profile:
            entry["profile_current_one_worker"] = profile(vectors, users, 10, args.block_mb)
        out[handle] = entry
        print(json.dumps({handle: entry}), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"data_dir": str(args.data_dir), "loadavg_end": os.getloadavg(), "models": out}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
