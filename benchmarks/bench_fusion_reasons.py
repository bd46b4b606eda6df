"""Fusion and reasons at scale: the ensemble's ``combine`` and every model's ``explain``, in seconds.

``python -m benchmarks.bench_fusion_reasons --data-dir DIR --out benchmarks/results/fusion_reasons.json``
fits the five component models on ``DIR`` once, searches each user's top 50 (the ensemble's
depth; ``--search`` as the generator's), then times, ``--rounds`` times each: every model's
``explain`` of its top 10 and the ensemble's cosine fusion of the lists (with the fitted models:
every candidate re-scored under every component) and its ``explain``.  The first round also
compiles the numba kernels and is not kept.  Per figure: the median, and the load average when
it started; the fit and search seconds are recorded too, once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

COMPONENTS = ("tfidf_user_interest", "knn_collab_filtering_user_course_view", "dnn_collab_filtering_user_course_level",
              "als_collab_filtering_user_course_view", "knn_collab_filtering_user_assessment_score")


def timed(fn):
    load, started = os.getloadavg()[0], time.perf_counter()
    result = fn()
    return result, {"seconds": round(time.perf_counter() - started, 3), "loadavg_1m_start": round(load, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--search", choices=("exact", "ann", "auto"), default="exact")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    from recommender.data.loader import load_tables
    from recommender.models.ensemble import EnsembleUserSimilarity
    from recommender.models.registry import create_model
    from recommender.search.neighbours import head
    from recommender.search.options import SearchOptions
    from recommender.topk import similar_users

    tables = load_tables(args.data_dir)
    options = SearchOptions(method=args.search)
    models, lists, setup = {}, {}, {}
    for handle in COMPONENTS:
        models[handle], fit = timed(lambda: create_model(handle).fit(tables))
        lists[handle], search = timed(lambda: similar_users(models[handle], 50, search=options))
        setup[handle] = {"fit": fit, "search_top_50": search}
        print(handle, setup[handle], flush=True)
    rounds: dict[str, list[dict]] = {}
    for round_ in range(args.rounds + 1):
        for handle, model in models.items():
            _, figures = timed(lambda: model.explain(head(lists[handle], 10)))
            rounds.setdefault(f"explain {handle}", []).append(figures)
        ensemble = EnsembleUserSimilarity()
        fused, figures = timed(lambda: ensemble.combine(lists, 10, models=models))
        rounds.setdefault("ensemble fusion (combine)", []).append(figures)
        _, figures = timed(lambda: ensemble.explain(fused))
        rounds.setdefault("explain ensemble_user_similarity", []).append(figures)
        print(f"round {round_}{' (warm-up, compiles)' if not round_ else ''}:",
              {k: v[-1]["seconds"] for k, v in rounds.items()}, flush=True)
    kept = {name: figures[1:] for name, figures in rounds.items()}
    users = len(fused.users)
    median = {name: {"seconds": statistics.median(f["seconds"] for f in figures),
                     "loadavg_1m_start": statistics.median(f["loadavg_1m_start"] for f in figures)}
              for name, figures in kept.items()}
    for figures in median.values():  # near-linear in users: what 1,000,000 users would take
        figures["seconds_at_1m_users_linear"] = round(figures["seconds"] * 1_000_000 / users, 1)
    out = {"data_dir": str(args.data_dir), "users": users, "search": args.search, "cpus": os.cpu_count(),
           "setup": setup, "median": median, "rounds": kept, "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    print(json.dumps({"users": users, "median": median}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
