#!/usr/bin/env python
"""The DNN fit alone at a given data size: seconds, epochs, seconds per epoch, peak RSS.

    python -m benchmarks.bench_dnn_fit --data-dir benchmarks/out/data-100000 --label 100000-after
    python -m benchmarks.bench_dnn_fit --data-dir benchmarks/out/data-1000000 --label 1000000-after

The generator's own report times the fit inside a whole run; this isolates it, so that a change
to the fit (batch size, input pipeline) is measured without the search and the writes around it.
Only ``user_course_views`` is loaded (with the project's loader, as the generator does).  Peak
RSS is taken twice: the kernel's high-water mark of this process (loading included) and a poll of
the RSS every 0.2 s while the fit alone runs.  Results go to ``benchmarks/results/dnn_fit.json`` keyed by
``--label`` (a new run replaces the same label), with the load average around the fit: the
machine has 2 cores shared with other work, so compare figures measured at a similar load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from benchmarks.bench_procmon import Sampler
from benchmarks.run_bench import commit
from recommender.data.loader import load_tables
from recommender.models.dnn_course_level import DnnUserCourseLevel

BENCH = Path(__file__).resolve().parent
OUT_JSON = BENCH / "results" / "dnn_fit.json"


class RssPoller(Sampler):
    """Highest RSS of this process seen every ``interval`` seconds while the block runs."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(interval)
        self.peak = 0
        self._proc = psutil.Process()

    def sample(self) -> None:
        self.peak = max(self.peak, self._proc.memory_info().rss)


def planted_truth(model: DnnUserCourseLevel, data_dir: Path, sample: int, seed: int = 7) -> dict:
    """Share of the top-10 cosine neighbours in the user's hidden skill level / community, on sampled users.

    Validation loss says little here (the level is a property of the course, val accuracy is ~1.0
    after one epoch); what the model is for is users whose embeddings sit near users of the same
    skill, which the synthetic data plants.  Exact search over all users, queries in chunks.
    """
    truth_path = data_dir / "ground_truth.csv"
    if not truth_path.is_file() or len(model.users_) < 20:
        return {}
    truth = pd.read_csv(truth_path).set_index("user_handle").reindex(model.users_)
    unit = model.vectors_ / np.maximum(np.linalg.norm(model.vectors_, axis=1, keepdims=True), 1e-12)
    queries = np.random.default_rng(seed).choice(len(unit), size=min(sample, len(unit)), replace=False)
    same_skill = same_community = 0
    for chunk in np.array_split(queries, max(1, len(queries) // 100)):
        scores = unit[chunk] @ unit.T
        scores[np.arange(len(chunk)), chunk] = -np.inf  # self excluded
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        same_skill += int((truth["skill"].to_numpy()[top] == truth["skill"].to_numpy()[chunk, None]).sum())
        same_community += int((truth["community"].to_numpy()[top] == truth["community"].to_numpy()[chunk, None]).sum())
    n = 10 * len(queries)
    return {"sample_users": len(queries), "skill_prec_at_10": round(same_skill / n, 4),
            "community_prec_at_10": round(same_community / n, 4)}


def measure(data_dir: Path, params: dict, sample: int) -> dict:
    started = time.perf_counter()
    tables = load_tables(data_dir, ("user_course_views",))
    load_seconds = time.perf_counter() - started
    rows = len(tables.user_course_views)
    model = DnnUserCourseLevel(**params)
    rss_before_fit = psutil.Process().memory_info().rss
    load_before = os.getloadavg()
    cpu_before = time.process_time()
    started = time.perf_counter()
    with RssPoller() as poller:
        model.fit(tables)
    fit_seconds = time.perf_counter() - started
    epochs = len(model.history_["loss"])
    return {
        "data_dir": str(data_dir),
        "view_rows": rows,
        "training_pairs": int(getattr(model, "training_pairs_", -1)),  # -1: code before the field
        "users": len(model.users_),
        "batch_size": int(getattr(model, "batch_size_", model.batch_size)),
        "row_sparse_updates": bool(getattr(model, "row_sparse_", False)),
        "params": params,
        "load_seconds": round(load_seconds, 2),
        "fit_seconds": round(fit_seconds, 2),
        "fit_cpu_seconds": round(time.process_time() - cpu_before, 2),
        "epochs": epochs,
        "seconds_per_epoch": round(fit_seconds / epochs, 2),
        "val_loss_by_epoch": [round(float(x), 5) for x in model.history_["val_loss"]],
        "best_val_loss": round(float(min(model.history_["val_loss"])), 5),
        "final_val_accuracy": round(float(model.history_["val_accuracy"][-1]), 5),
        "rss_before_fit_mb": round(rss_before_fit / 2**20),  # the loaded table and the libraries
        "fit_peak_rss_mb": round(poller.peak / 2**20),
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "embeddings_sha256": hashlib.sha256(np.ascontiguousarray(model.vectors_).tobytes()).hexdigest()[:16],
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "planted_truth": planted_truth(model, data_dir, sample),
        "cores": os.cpu_count(),
        "commit": commit(dirty=True),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--label", required=True, help="key in benchmarks/results/dnn_fit.json, e.g. 100000-after")
    parser.add_argument("--params", default="{}", help="DnnUserCourseLevel parameters as JSON")
    parser.add_argument("--sample", type=int, default=2000, help="users sampled for the planted-truth check")
    parser.add_argument("--out", type=Path, default=OUT_JSON)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = measure(args.data_dir, json.loads(args.params), args.sample)
    runs = json.loads(args.out.read_text())["runs"] if args.out.is_file() else {}
    runs[args.label] = result
    args.out.write_text(json.dumps({"schema": 1, "runs": runs}, indent=2) + "\n")
    print(json.dumps({args.label: result}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
