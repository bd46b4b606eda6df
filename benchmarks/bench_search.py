#!/usr/bin/env python
"""The all-users search of every model at scale, as the generator runs it (``make bench-search``).

    python benchmarks/bench_search.py [--users 1000000] [--data-dir DIR] [--cache-dir DIR] [--out benchmarks/results/search-ann.json]
        [--auto-exact-max-users N] [--with-exact]

Per model: its vectors (fitted once on the synthetic data, seed 7, and cached as ``.npy`` /
``.npz`` under ``--cache-dir`` so that a retry does not refit), then the search the generator's
``--search`` (default ``auto``) picks for that many users, at the depth the run asks (50 for the
ensemble's components, 10 for the others).  Recorded: method, index parameters, seconds of each
stage (projection + k-means + filing = build, query, exact re-rank, sampled recall), recall@10 on
the generator's 2,000-user sample against exact search, and the peak RSS of the process that
searched (each model searches in its own process, so the figure is that model's alone), with the
process's CPU seconds.  The machine's load average is recorded around each model: the CPU is shared.
``--with-exact`` also times the exact search of each model searched approximately (the comparison of
``benchmarks/results/search-sparse.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from scipy import sparse  # noqa: E402

from benchmarks.bench_report import search_ann_table  # noqa: E402
from recommender.models.ensemble import DEFAULT_DEPTH  # noqa: E402
from recommender.models.registry import MODEL_HANDLES, MODELS  # noqa: E402

log = logging.getLogger("bench_search")

#: The ensemble's components are searched at its candidate depth, the other models at top-N.
COMPONENTS = ("tfidf_user_interest", "als_collab_filtering_user_course_view", "knn_collab_filtering_user_assessment_score")
SEARCHED = tuple(h for h in MODEL_HANDLES if h != "ensemble_user_similarity")


def cached_vectors(handle: str, data_dir: Path, cache_dir: Path) -> tuple[np.ndarray | sparse.csr_matrix, np.ndarray]:
    """The model's fitted (vectors, users), from ``cache_dir`` or fitted on ``data_dir`` and cached there."""
    users_file = cache_dir / f"{handle}.users.npy"
    if not users_file.exists():
        from recommender.data.loader import load_tables

        spec = next(s for s in MODELS if s.handle == handle)
        model = spec.create().fit(load_tables(data_dir, spec.tables))
        vectors, users = model.user_vectors()
        cache_dir.mkdir(parents=True, exist_ok=True)
        if sparse.issparse(vectors):
            sparse.save_npz(cache_dir / f"{handle}.vectors.npz", sparse.csr_matrix(vectors))
        else:
            np.save(cache_dir / f"{handle}.vectors.npy", np.asarray(vectors))
        np.save(users_file, np.asarray(users))
    stored = cache_dir / f"{handle}.vectors.npz"
    vectors = sparse.load_npz(stored).tocsr() if stored.exists() else np.load(cache_dir / f"{handle}.vectors.npy")
    return vectors, np.load(users_file)


def search_one(handle: str, args: argparse.Namespace) -> dict:
    """One model's search as the generator runs it (in this process: its peak RSS is the model's)."""
    from recommender.search.ann import ann_top_k
    from recommender.search.clusters import cluster_top_k
    from recommender.search.exact import exact_top_k, postings_per_user, sparse_content
    from recommender.search.options import AUTO_EXACT_MAX_USERS, SearchOptions

    vectors, users = cached_vectors(handle, args.data_dir, args.cache_dir)
    depth = DEFAULT_DEPTH if handle in COMPONENTS else 10
    options = SearchOptions(method=args.search, auto_exact_max_users=args.auto_exact_max_users or AUTO_EXACT_MAX_USERS)
    cost = postings_per_user(vectors) if sparse.issparse(vectors) else None
    method = options.method_for(vectors)
    entry: dict = {"users": int(len(users)), "features": int(vectors.shape[1]), "depth": depth, "method": method,
                   "nnz": int(vectors.nnz) if sparse.issparse(vectors) else None,
                   "postings_per_user": round(cost) if cost is not None else None, "load_before": round(os.getloadavg()[0], 2)}
    t0 = time.perf_counter()
    if method == "ann":
        stats: dict = {}
        if sparse_content(vectors):  # as top_k_cosine picks: the cluster index, with the pilot under auto
            result = cluster_top_k(vectors, users, depth, options=options, pilot=args.search == "auto", stats=stats)
            entry["method"] = result.method  # "exact" when the pilot found no probes at the floor
        else:
            result = ann_top_k(vectors, users, depth, options=options, stats=stats)
        entry.update(params=stats["params"], seconds=stats["seconds"], recall_at_10=round(float(result.recall_at_10), 4))
    else:
        exact_top_k(vectors, users, depth)
        entry.update(params={"kernel": "postings" if sparse.issparse(vectors) else "dense"}, recall_at_10=1.0)
    entry["seconds_total"] = round(time.perf_counter() - t0, 1)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    entry["cpu_seconds_process"] = round(usage.ru_utime + usage.ru_stime, 1)  # loading the vectors included
    entry["load_after"] = round(os.getloadavg()[0], 2)
    entry["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return entry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000, help="users of the synthetic data (generated when --data-dir is missing)")
    parser.add_argument("--data-dir", type=Path, help="default: benchmarks/out/data-USERS")
    parser.add_argument("--cache-dir", type=Path, help="fitted vectors (default: benchmarks/out/vectors-USERS)")
    parser.add_argument("--models", default=",".join(SEARCHED))
    parser.add_argument("--search", default="auto", choices=("auto", "ann", "exact"), help="as the generator's --search")
    parser.add_argument("--auto-exact-max-users", type=int, help="as the setting AUTO_EXACT_MAX_USERS (default: its default)")
    parser.add_argument("--with-exact", action="store_true",
                        help="also search every model that is not searched exactly exactly, in its own process (seconds to compare)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/search-ann.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: search one model, print its JSON
    args = parser.parse_args()
    args.data_dir = args.data_dir or REPO / f"benchmarks/out/data-{args.users}"
    args.cache_dir = args.cache_dir or REPO / f"benchmarks/out/vectors-{args.users}"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.one:
        print(json.dumps(search_one(args.one, args)))
        return 0
    if not (args.data_dir / "user_interests.csv").exists():
        subprocess.run([sys.executable, "-m", "recommender_tools.datagen", "--users", str(args.users), "--seed", "7",
                        "--out", str(args.data_dir)], check=True, cwd=REPO)
    results = {"data_dir": str(args.data_dir), "users": args.users, "cpus": os.cpu_count(), "search": args.search,
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "commit": subprocess.run(["git", "log", "-1", "--format=%h"], cwd=REPO, capture_output=True, text=True).stdout.strip(),
               "models": {}}
    if args.auto_exact_max_users:
        results["auto_exact_max_users"] = args.auto_exact_max_users
    for handle in args.models.split(","):
        def one(search: str) -> dict:
            command = [sys.executable, __file__, "--one", handle, "--users", str(args.users), "--search", search,
                       "--data-dir", str(args.data_dir), "--cache-dir", str(args.cache_dir)]
            if args.auto_exact_max_users:
                command += ["--auto-exact-max-users", str(args.auto_exact_max_users)]
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
            return json.loads(done.stdout.strip().splitlines()[-1])

        results["models"][handle] = one(args.search)
        if args.with_exact and results["models"][handle]["method"] != "exact":
            exact = one("exact")
            results["models"][handle]["exact"] = {k: exact[k] for k in ("seconds_total", "cpu_seconds_process", "load_before", "load_after", "peak_rss_mb")}
        log.info("%s: %s", handle, results["models"][handle])
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(search_ann_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
