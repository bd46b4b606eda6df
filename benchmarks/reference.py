#!/usr/bin/env python
"""The project's top-k search against scikit-learn's brute-force NearestNeighbors, same vectors.

Run by ``benchmarks/run_bench.py`` as a subprocess (so TensorFlow and the vectors leave with it)::

    python -m benchmarks.reference --data-dir DIR --models a,b --out FILE [--full-max 20000 --sample 2000]

Per model: fit with ``create_model(handle).fit(load_tables(DIR))``, take ``user_vectors()``, then

* up to ``--full-max`` users (*full* mode): time ``recommender.topk.top_k_cosine`` (n=10) and
  ``NearestNeighbors(metric="cosine", algorithm="brute").kneighbors`` over every user, back to
  back in this process, and compare every user's neighbour set;
* above it (*sample* mode, the all-users brute force costs as much as the search itself):
  time sklearn on ``--sample`` random query users against all users and scale by
  users / sample (brute force is linear in the queries); the project's answers for those users
  are the lists the generator **published** (read back from DynamoDB through the run pointer), and
  the time to compare with is the generator's own ``search_seconds`` (the caller has it).

sklearn is asked for 12 neighbours: self + 10 + the 11th, whose score tells whether the 10th
place is tied.  Neighbour sets are compared where the 10th and 11th scores differ by more than
1e-6 (``strict``); users with fewer than 10 positive similarities (the project keeps only
positive ones) are compared on their positive neighbours (``short``); the rest are tied and
skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from scipy import sparse  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from recommender.data.loader import load_tables  # noqa: E402
from recommender.models.registry import create_model  # noqa: E402
from recommender.topk import top_k_cosine  # noqa: E402

TOP_N = 10
TIE_EPS = 1e-6


def compare(users: np.ndarray, queries: np.ndarray, ours: list[list[int]], ours_scores: list[list[float]],
            idx: np.ndarray, dist: np.ndarray) -> dict:
    """Compare the project's lists with sklearn's (indices ``idx``, cosine distances ``dist``)."""
    strict = strict_same = tied = short = short_same = 0
    max_diff = 0.0
    mismatches = []
    for row, q in enumerate(queries):
        keep = idx[row] != q  # drop self (by index: a duplicate vector may come first)
        neighbours = idx[row][keep][: TOP_N + 1]
        sims = 1.0 - dist[row][keep][: TOP_N + 1]
        mine = set(ours[row])
        if len(sims) <= TOP_N:  # fewer than 11 other users: nothing can be tied past the end
            s10, s11 = (sims[-1] if len(sims) else 0.0), -np.inf
        else:
            s10, s11 = sims[TOP_N - 1], sims[TOP_N]
        if s10 <= TIE_EPS:
            short += 1
            theirs = set(users[neighbours[sims > TIE_EPS]].tolist())
            same = theirs == mine
            short_same += same
        elif s10 - s11 > TIE_EPS:
            strict += 1
            theirs = set(users[neighbours[:TOP_N]].tolist())
            same = theirs == mine
            strict_same += same
            if same:
                max_diff = max(max_diff, float(np.max(np.abs(np.sort(sims[:TOP_N]) - np.sort(np.asarray(ours_scores[row], dtype=float))))))
        else:
            tied += 1
            continue
        if not same and len(mismatches) < 3:
            mismatches.append({"user": int(users[q]), "ours": sorted(mine), "sklearn": sorted(theirs)})
    return {
        "compared_strict": strict,
        "identical_strict": strict_same,
        "share_identical": round(strict_same / strict, 6) if strict else None,
        "tied_skipped": tied,
        "short_lists": short,
        "short_identical": short_same,
        "max_abs_score_diff": round(max_diff, 9),
        "mismatch_examples": mismatches,
    }


def published_lists(users: list[int], model: str) -> tuple[list[list[int]], list[list[float]]]:
    """The generator's published lists for ``users`` (DynamoDB, through the run pointer)."""
    from recommender.config import GeneratorSettings, load_settings
    from recommender.store.dynamo import DynamoStore

    store = DynamoStore.for_generator(load_settings(GeneratorSettings, env_file=None))
    ids, scores = [], []
    for user in users:
        item = store.get(user, model)
        ids.append(item.similar_users if item else [])
        scores.append(item.scores if item else [])
    return ids, scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--full-max", type=int, default=20_000, help="largest user count compared in full (default %(default)s)")
    parser.add_argument("--sample", type=int, default=2_000, help="query users above --full-max (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    t0 = time.perf_counter()
    tables = load_tables(args.data_dir)
    out: dict = {"load_seconds": round(time.perf_counter() - t0, 3), "models": {}}
    for handle in [m for m in args.models.split(",") if m]:
        entry: dict = {}
        t0 = time.perf_counter()
        model = create_model(handle).fit(tables)
        entry["fit_seconds"] = round(time.perf_counter() - t0, 3)
        vectors, users = model.user_vectors()
        users = np.asarray(users, dtype=np.int64)
        count = len(users)
        entry.update(users=count, vector_shape=list(vectors.shape), sparse=bool(sparse.issparse(vectors)))
        full = count <= args.full_max
        queries = np.arange(count) if full else np.sort(np.random.default_rng(args.seed).choice(count, min(args.sample, count), replace=False))
        entry.update(mode="full" if full else "sample", queries=len(queries))

        if full:
            t0 = time.perf_counter()
            mine = top_k_cosine(vectors, users, TOP_N)
            entry["ours_seconds"] = round(time.perf_counter() - t0, 3)
            valid = mine.similar >= 0
            ours = [row[ok].tolist() for row, ok in zip(mine.similar, valid)]
            ours_scores = [row[ok].tolist() for row, ok in zip(mine.scores, valid)]

        t0 = time.perf_counter()
        nn = NearestNeighbors(n_neighbors=TOP_N + 2, metric="cosine", algorithm="brute").fit(vectors)
        dist, idx = nn.kneighbors(vectors[queries])
        seconds = time.perf_counter() - t0
        entry["sklearn_seconds"] = round(seconds, 3)
        entry["sklearn_seconds_all_users"] = round(seconds * count / len(queries), 3)
        if full:
            entry["ratio_sklearn_over_ours"] = round(seconds / entry["ours_seconds"], 3)
        else:
            t0 = time.perf_counter()
            ours, ours_scores = published_lists(users[queries].tolist(), handle)
            entry["read_published_seconds"] = round(time.perf_counter() - t0, 3)
        entry.update(compare(users, queries, ours, ours_scores, idx, dist))
        out["models"][handle] = entry
        print(json.dumps({handle: {k: v for k, v in entry.items() if k != "mismatch_examples"}}), flush=True)
        del model, vectors, nn, dist, idx
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    args.out.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
