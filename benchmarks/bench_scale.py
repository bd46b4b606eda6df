#!/usr/bin/env python
"""The whole generator at scale: synthetic users, all models, into DynamoDB Local; one run per engine.

    make bench-scale                                           # 1,000,000 users, local engine
    make bench-scale SCALE_USERS=100000 SCALE_ENGINE=local,dask
    python -m benchmarks.bench_scale --users 5000 --engines local,dask

Per engine: the real ``run_generator.py --report`` (all models, ``--search`` as given, default
``auto``) as a subprocess measured by :func:`bench.bench_procmon.run_measured` (wall time, peak
RSS of the whole process tree: the generator and its Dask workers), against its own DynamoDB Local
(``scripts/dynamodb_local.sh``, as ``make run`` starts it, on its own port, in memory; started and
stopped here; warmed up before each run with 2 × 3,000 throw-away items as ``make bench`` does), the
machine's load average sampled every 5 s meanwhile.  Stages, recall@10 and items
come from the generator's own run report.  The synthetic data (``recommender_tools.datagen``, seed 7) is
cached in ``benchmarks/out/data-<users>`` as ``make bench`` does.  When two engines run in one call,
the second run's published neighbour lists are compared with the first's by the lists checksum of
each model in the run reports (:mod:`recommender.search.checksum`), and with ``--compare-items``
also item by item, read back from both tables (both runs stay while ``KEEP_RUNS`` is 2).

Writes ``benchmarks/results/scale.json`` (runs keyed ``<users>-<engine>-<search>``, a new run replaces the
same key); ``make docs`` renders it into docs/benchmarks.md and the README.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.bench_procmon import Sampler, cpu, java_pid, run_measured
from benchmarks.run_bench import BENCH, REPO, child_env, commit, drop_tables, dynamodb, log, make_data, warm_up_dynamodb

SCALE_JSON = BENCH / "results" / "scale.json"
TABLE_PREFIX = "bench_scale"


class LoadSampler(Sampler):
    """The 1-minute load average every ``interval`` seconds while a run lasts: how busy the machine was."""

    def __init__(self, interval: float = 5.0):
        super().__init__(interval)
        self.samples: list[float] = []

    def sample(self) -> None:
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict:
        s = self.samples or [float("nan")]
        return {"mean": round(sum(s) / len(s), 2), "max": round(max(s), 2), "samples": len(self.samples)}


def run_one(users: int, engine: str, search: str, workers: int, data_dir: Path, port: int, timeout: float) -> dict:
    """One generator run; its entry of ``scale.json``."""
    out = BENCH / "out"
    name = f"scale-{users}-{engine}"
    report_path = out / f"{name}.json"
    report_path.unlink(missing_ok=True)
    env = {**child_env(port, TABLE_PREFIX, data_dir), "DASK_WORKERS": str(workers), "KEEP_RUNS": "2"}
    cmd = [sys.executable, str(REPO / "run_generator.py"), "--report", str(report_path), "--no-progress",
           "--data-dir", str(data_dir), "--top-n", "10", "--search", search, "--engine", engine]
    log(f"{users:,} users, engine {engine}: {' '.join(cmd[1:])}")
    code = commit()  # the code that runs (the tree may be committed to while it does)
    jpid = java_pid(port)
    db_cpu = cpu(jpid)
    with LoadSampler() as load:
        proc = run_measured(cmd, env=env, cwd=REPO, log_path=out / f"{name}.log", timeout=timeout, interval=0.5)
    db_cpu = cpu(jpid) - db_cpu
    if proc.exit_code != 0 or not report_path.is_file():
        raise RuntimeError(f"generator failed (exit {proc.exit_code}, timed out: {proc.timed_out}); see {out / f'{name}.log'}")
    report = json.loads(report_path.read_text())
    models = report["models"]
    items = sum(m["items_written"] for m in models)
    write_seconds = sum(m["write_seconds"] for m in models)
    stages = {"load": round(report["load_seconds"], 2), "models": {}, "publish": round(report["publish_seconds"], 2)}
    for m in models:
        stages["models"][m["handle"]] = {
            "search_method": m["search"], "users_covered": m["users_covered"], "items": m["items_written"],
            "lists_checksum": m.get("lists_checksum"),
            **{k: round(m[f"{k}_seconds"], 2) for k in ("fit", "search", "explain", "write")},
            **({"partitions": m["partitions"], "partitions_seconds": round(m["partitions_seconds"], 2)}
               if m.get("partitions") else {}),
        }
    return {
        "users": users,
        "engine": engine,
        "search": search,
        "total_seconds": round(proc.wall_seconds, 1),
        "peak_rss_mb": round(proc.peak_rss_tree_mb),
        "items_written": items,
        # Σ write seconds: the driver's wall time writing (local engine); with the Dask engine the
        # partitions' write time summed over tasks (they overlap), so this is one writer's rate.
        "items_per_second": round(items / write_seconds) if write_seconds else None,
        "run_items_per_second": round(items / proc.wall_seconds),
        "stages": stages,
        "recall_at_10": {m["handle"]: m["recall_at_10"] for m in models},
        "generator_seconds": round(report["total_seconds"], 1),
        "peak_rss_process_mb": round(proc.peak_rss_mb),
        "workers": workers if engine == "dask" else None,
        "run_id": report["run_id"],
        "cpu_seconds": round(proc.cpu_seconds, 1),
        "machine_cpu_pct": round(proc.machine_cpu_pct, 1),
        "loadavg_1min": load.summary(),
        "dynamodb_local_cpu_seconds": round(db_cpu, 1),
        "measured_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "commit": code,
    }


def _digests(client, table: str, segments: int = 2) -> dict[tuple[int, str], bytes]:
    """(user, model) → digest of the stored neighbour list and scores, for every item of a run table.

    Only the four attributes compared are read (the reasons are most of an item's bytes), in
    ``segments`` parallel scans through boto3's scan paginator (the client is thread-safe)."""
    def scan(segment: int) -> dict[tuple[int, str], bytes]:
        out = {}
        pages = client.get_paginator("scan").paginate(
            TableName=table, Segment=segment, TotalSegments=segments,
            ProjectionExpression="user_handle, model_handle, similar_users, scores")
        for page in pages:
            for item in page["Items"]:
                lists = (item["similar_users"]["S"] + "|" + item["scores"]["S"]).encode()
                key = (int(item["user_handle"]["N"]), item["model_handle"]["S"])
                out[key] = hashlib.blake2b(lists, digest_size=16).digest()
        return out

    with ThreadPoolExecutor(segments) as pool:
        parts = list(pool.map(scan, range(segments)))
    return {key: value for part in parts for key, value in part.items()}


def compare_checksums(first: dict, second: dict) -> dict:
    """Did the two runs publish the same lists?  By the checksums in their run reports (instant; the
    tests check that equal checksums go with equal items read back)."""
    a, b = ({h: m["lists_checksum"] for h, m in run["stages"]["models"].items()} for run in (first, second))
    models = {h: a.get(h) == b.get(h) and bool(a.get(h)) for h in sorted(a.keys() | b.keys())}
    result = {"engine": first["engine"], "run_id": first["run_id"], "by": "run report lists_checksum",
              "models": models, "same_lists": all(models.values())}
    log(f"compared with the {first['engine']} run: {result}")
    return result


def compare_lists(port: int, first: dict, second: dict) -> dict:
    """Are the two runs' published neighbour lists (ids and stored scores) the same, item by item?"""
    from recommender.store.dynamo import client_config, dynamodb_client

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")  # DynamoDB Local takes any key
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    client = dynamodb_client(f"http://127.0.0.1:{port}", "us-east-1",
                             client_config(attempts=3, connect_timeout=5, read_timeout=120, validate=False))
    t0 = time.perf_counter()
    a = _digests(client, f"{TABLE_PREFIX}-{first['run_id']}")
    b = _digests(client, f"{TABLE_PREFIX}-{second['run_id']}")
    different = sum(1 for key in a.keys() & b.keys() if a[key] != b[key])
    result = {"engine": first["engine"], "run_id": first["run_id"], "items": len(a), "identical": len(a.keys() & b.keys()) - different,
              "different": different, "only_in_one": len(a.keys() ^ b.keys()), "seconds": round(time.perf_counter() - t0, 1)}
    result["same_lists"] = different == 0 and result["only_in_one"] == 0 and len(a) > 0
    log(f"compared with the {first['engine']} run: {result}")
    return result


# -- tables ---------------------------------------------------------------------------------------

def write_outputs(runs: dict) -> None:
    """``benchmarks/results/scale.json`` only: ``scripts/render_docs.py`` (``make docs``) renders its tables."""
    SCALE_JSON.write_text(json.dumps({"schema": 1, "runs": runs}, indent=2) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1_000_000, help="synthetic users (default: %(default)s)")
    p.add_argument("--engines", default="local", help="comma-separated, run in this order: local, dask (default: %(default)s)")
    p.add_argument("--search", choices=("exact", "ann", "auto"), default="auto", help="default: %(default)s")
    p.add_argument("--workers", type=int, default=2, help="Dask LocalCluster worker processes (default: %(default)s)")
    p.add_argument("--dynamodb-port", type=int, default=int(os.environ.get("SCALE_DYNAMODB_PORT", 8200)),
                   help="own DynamoDB Local port (default: %(default)s, env SCALE_DYNAMODB_PORT)")
    p.add_argument("--timeout", type=float, default=4 * 3600.0, help="per generator run, seconds (default: %(default)s)")
    p.add_argument("--fresh-data", action="store_true", help="regenerate the synthetic data even when cached")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="no throw-away writes to warm DynamoDB Local's JVM before each run (as make bench does)")
    p.add_argument("--compare-items", action="store_true",
                   help="also read both runs' tables back and compare every item's lists (~3 min per 1M items)")
    args = p.parse_args(argv)
    args.engines = [e for e in args.engines.split(",") if e]
    if not args.engines or any(e not in ("local", "dask") for e in args.engines):
        p.error("--engines: local, dask or both")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = json.loads(SCALE_JSON.read_text())["runs"] if SCALE_JSON.is_file() else {}
    (BENCH / "out").mkdir(parents=True, exist_ok=True)
    data = make_data(args.users, BENCH / "out", args.fresh_data)
    log(dynamodb("start", args.dynamodb_port))
    try:
        drop_tables(child_env(args.dynamodb_port, TABLE_PREFIX, Path(data["dir"])), TABLE_PREFIX)
        done: list[dict] = []
        for engine in args.engines:
            warmup = warm_up_dynamodb(args.dynamodb_port, 2, 3000) if args.warmup else []
            run = run_one(args.users, engine, args.search, args.workers, Path(data["dir"]), args.dynamodb_port, args.timeout)
            run["data"] = {k: v for k, v in data.items() if k != "dir"}
            run["dynamodb_warmup"] = warmup
            if done:
                run["compared_with"] = compare_checksums(done[0], run)
                if args.compare_items:
                    run["compared_items_with"] = compare_lists(args.dynamodb_port, done[0], run)
            done.append(run)
            runs[f"{args.users}-{engine}-{args.search}"] = run
            write_outputs(runs)
            log(f"{args.users:,} users, {engine}: {run['total_seconds']:,.0f} s, peak RSS {run['peak_rss_mb']:,} MB, "
                f"{run['items_written']:,} items")
    finally:
        log(dynamodb("stop", args.dynamodb_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
