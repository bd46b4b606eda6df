#!/usr/bin/env python
"""All-users top-10 search at 100,000 users: exact vs approximate (``make bench-search``).

    python benchmarks/bench_search.py [--data-dir benchmarks/out/data-100000] [--out benchmarks/results/search.json]

Per model (fitted once on the synthetic data, seed 7): wall time of

* ``exact-new``: ``recommender.search.exact.exact_top_k`` (posting lists for sparse vectors, dense
  GEMM for dense ones), all users; plus, for sparse vectors, the dense-GEMM kernel timed on
  ``--dense-sample`` users and scaled to all users (it is linear in the queries);
* ``ann``: ``recommender.search.ann.ann_top_k`` with the generator's defaults (faiss HNSW,
  single-threaded build, exact re-ranking, recall check on 2,000 sampled users), all users;
* ``hnswlib``: the same candidates from hnswlib's HNSW (same M, ef_construction, ef; build on one
  thread with a fixed seed), re-ranked the same way (only when hnswlib is installed; it is not a
  dependency: ``pip install hnswlib==0.8.0``).

Recall@10 of every approximate answer is measured against exact-new on *all* users (and the
generator's own sampled figure is shown next to it).  ``exact-old`` figures in an older results file
were measured against the earlier exact search, whose code git keeps.  The machine's load average is recorded before and after each step: the CPU is shared.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks.bench_report import search_table  # noqa: E402
from recommender.data.loader import load_tables  # noqa: E402
from recommender.models.registry import MODEL_HANDLES, create_model  # noqa: E402
from recommender.search.ann import ann_top_k, index_vectors  # noqa: E402
from recommender.search.exact import dense_is_cheaper, exact_top_k, unit_rows  # noqa: E402
from recommender.search.options import SearchOptions  # noqa: E402
from recommender.search.recall import recall_at_k  # noqa: E402
from recommender.search.rerank import rerank  # noqa: E402

log = logging.getLogger("bench_search")


def timed(label: str, func, *args, **kwargs):
    """(result, figures) with wall seconds and the load average around the call."""
    before = os.getloadavg()[0]
    t0 = time.perf_counter()
    result = func(*args, **kwargs)
    seconds = time.perf_counter() - t0
    figures = {"seconds": round(seconds, 2), "load_before": round(before, 2), "load_after": round(os.getloadavg()[0], 2)}
    log.info("%s: %.1fs (load %.1f → %.1f)", label, seconds, figures["load_before"], figures["load_after"])
    return result, figures


def hnswlib_hnsw(vectors, users, options: SearchOptions, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The ANN path with hnswlib's HNSW in place of faiss's: same data, graph parameters and re-ranking."""
    import hnswlib

    unit = unit_rows(vectors)
    data = index_vectors(unit, options.ann_dims, options.seed)
    index = hnswlib.Index(space="ip", dim=data.shape[1])
    index.init_index(max_elements=len(data), M=options.hnsw_m, ef_construction=options.hnsw_ef_construction, random_seed=options.seed)
    index.add_items(data, np.arange(len(data)), num_threads=1)
    index.set_ef(options.hnsw_ef)
    labels, _ = index.knn_query(data, k=options.hnsw_ef, num_threads=2)
    cols, scores = rerank(unit, np.arange(len(users)), labels.astype(np.int64), k)
    return np.where(cols >= 0, users[np.maximum(cols, 0)], -1), scores


def bench_model(handle: str, tables, args) -> dict:
    (model, fit) = timed(f"{handle} fit", lambda: create_model(handle).fit(tables))
    vectors, users = model.user_vectors()
    sparse_input = hasattr(vectors, "nnz")
    entry: dict = {"users": int(len(users)), "features": int(vectors.shape[1]), "fit": fit,
                   "nnz": int(vectors.nnz) if sparse_input else None}
    entry["kernel"] = "postings" if sparse_input and not dense_is_cheaper(unit_rows(vectors)) else "dense"
    options = SearchOptions(method="ann")
    exact, entry["exact_new"] = timed(f"{handle} exact-new", exact_top_k, vectors, users, 10)
    if entry["kernel"] == "postings" and args.dense_sample:
        rows = np.arange(min(args.dense_sample, len(users)))
        _, dense = timed(f"{handle} dense GEMM kernel on {rows.size} users", exact_top_k, vectors, users, 10, rows=rows, kernel="dense")
        entry["exact_dense_gemm_scaled"] = {**dense, "sample_users": int(rows.size),
                                           "seconds": round(dense["seconds"] * len(users) / rows.size, 1)}
    approx, entry["ann"] = timed(f"{handle} ann (faiss HNSW)", ann_top_k, vectors, users, 10, options=options)
    entry["ann"]["recall_at_10_all_users"] = round(recall_at_k(approx.similar, approx.scores, exact.similar, exact.scores), 4)
    entry["ann"]["recall_at_10_sampled"] = round(float(approx.recall_at_10), 4)
    entry["ann"]["params"] = {"M": options.hnsw_m, "ef_construction": options.hnsw_ef_construction, "ef": options.hnsw_ef,
                              "index_dims": int(min(vectors.shape[1], options.ann_dims) if vectors.shape[1] > 1024 else vectors.shape[1])}
    if args.determinism:
        again, _ = timed(f"{handle} ann again", ann_top_k, vectors, users, 10, options=options)
        entry["ann"]["same_lists_on_rerun"] = bool(np.array_equal(again.similar, approx.similar))
    try:
        import hnswlib  # noqa: F401
    except ImportError:
        return entry
    if args.skip_hnswlib:
        return entry
    (similar, scores), entry["hnswlib"] = timed(f"{handle} ann (hnswlib)", hnswlib_hnsw, vectors, users, options)
    entry["hnswlib"]["recall_at_10_all_users"] = round(recall_at_k(similar, scores, exact.similar, exact.scores), 4)
    if args.determinism:
        (again, _), _ = timed(f"{handle} hnswlib again", hnswlib_hnsw, vectors, users, options)
        entry["hnswlib"]["same_lists_on_rerun"] = bool(np.array_equal(again, similar))
    return entry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO / "benchmarks/out/data-100000")
    parser.add_argument("--users", type=int, default=100_000, help="users to generate when --data-dir is missing")
    parser.add_argument("--models", default=",".join(MODEL_HANDLES))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/search.json")
    parser.add_argument("--dense-sample", type=int, default=10_000, help="users for the scaled dense-GEMM figure (0: skip)")
    parser.add_argument("--determinism", action="store_true", help="build each approximate index twice and compare")
    parser.add_argument("--skip-hnswlib", action="store_true", help="do not time hnswlib even when it is installed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not (args.data_dir / "user_interests.csv").exists():
        subprocess.run([sys.executable, "-m", "recommender_tools.datagen", "--users", str(args.users), "--seed", "7",
                        "--out", str(args.data_dir)], check=True, cwd=REPO)
    tables = load_tables(args.data_dir)
    results = {"data_dir": str(args.data_dir), "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "commit": subprocess.run(["git", "log", "-1", "--format=%h"], cwd=REPO, capture_output=True, text=True).stdout.strip(),
               "models": {}}
    for handle in args.models.split(","):
        results["models"][handle] = bench_model(handle, tables, args)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(search_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
