#!/usr/bin/env python
"""The whole nightly batch at scale: all six models, the local executor, then Dask, then a timed load.

    make bench-scale SCALE_USERS=1000000 SCALE_SINK=export     # the goal's measurement
    make bench-scale SCALE_USERS=20000                         # the same, end to end in minutes
    python -m benchmarks.bench_scale --users 5000 --engines local,dask --sink export

In turn: the real ``run_generator.py --report`` (all models, ``--search`` as given, default
``auto``) with ``--engine local``, then the same run with ``--engine dask`` on a LocalCluster of
``--workers`` (2) processes, each measured by :func:`benchmarks.bench_procmon.run_measured` (wall
time, peak RSS of the whole process tree: the generator, its worker processes or its Dask workers),
the machine's load average sampled every 5 s meanwhile.  With ``--sink export`` (the sink used at
scale, docs/sinks.md) each run writes its DynamoDB-import-format export under ``benchmarks/out/``;
then the local run's export is loaded into DynamoDB Local (its own port, in memory, started and
warmed up here) by the project's writer, ``similar-users-load`` (recommender/cli/load.py), timed the
same way: what serving a night's export on a laptop costs.  With ``--sink write`` the runs write
into DynamoDB Local themselves (and ``--compare-items`` reads both runs' items back).  Stages,
recall@10 and the lists checksums come from the generator's own run report; the Dask run's lists
are compared with the local run's by those checksums (:mod:`recommender.search.checksum`).  The
synthetic data (``recommender_tools.datagen``, seed 7) is cached in ``benchmarks/out/data-<users>``
as ``make bench`` does.

Writes ``benchmarks/results/scale.json`` (runs keyed ``<users>-<engine>-<search>[-<sink>]``, a new run
replaces the same key); ``scripts/render_docs.py`` renders it into docs/benchmarks.md and docs/scaling.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.bench_procmon import Sampler, cpu, java_pid, run_measured
from benchmarks.run_bench import BENCH, REPO, child_env, commit, drop_tables, dynamodb, log, make_data, warm_up_dynamodb
from recommender.config import GeneratorSettings

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


def run_one(users: int, engine: str, search: str, sink: str, workers: int, data_dir: Path, port: int,
            timeout: float, min_recall: float | None = None) -> dict:
    """One generator run; its entry of ``scale.json`` (``export_dir``: where ``--sink export`` put its files)."""
    out = BENCH / "out"
    name = f"scale-{users}-{engine}-{sink}"
    report_path = out / f"{name}.json"
    report_path.unlink(missing_ok=True)
    env = {**child_env(port, TABLE_PREFIX, data_dir), "DASK_WORKERS": str(workers), "KEEP_RUNS": "2"}
    if min_recall is not None:  # a measurement of a run the recall check would refuse: labelled in the entry
        env["MIN_RECALL"] = str(min_recall)
    cmd = [sys.executable, str(REPO / "run_generator.py"), "--report", str(report_path), "--no-progress",
           "--data-dir", str(data_dir), "--top-n", "10", "--search", search, "--engine", engine, "--sink", sink]
    export_dir = out / f"export-{users}-{engine}"
    if sink == "export":
        shutil.rmtree(export_dir, ignore_errors=True)  # an export needs an empty location
        cmd += ["--export-uri", str(export_dir)]
    log(f"{users:,} users, engine {engine}: {' '.join(cmd[1:])}")
    code = commit()  # the code that runs (the tree may be committed to while it does)
    jpid = java_pid(port) if sink == "write" else None
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
    write = "export" if sink == "export" else "write"
    stages = {"load": round(report["load_seconds"], 2), "models": {}, "publish": round(report["publish_seconds"], 2)}
    for m in models:
        stages["models"][m["handle"]] = {
            "search_method": m["search"], "users_covered": m["users_covered"], "items": m["items_written"],
            "lists_checksum": m.get("lists_checksum"), "peak_rss_mb_after": m.get("peak_rss_mb"),
            **{k: round(m.get(f"{k}_seconds", 0.0), 2) for k in ("fit", "prepare", "search", "explain")},
            "search_plan": m.get("search_plan"),
            write: round(m["write_seconds"], 2),
            **({"partitions": m["partitions"], "partitions_seconds": round(m["partitions_seconds"], 2)}
               if m.get("partitions") else {}),
        }
    return {
        "users": users,
        "engine": engine,
        "search": search,
        "sink": sink,
        "commit": code,
        "total_seconds": round(proc.wall_seconds, 1),
        "peak_rss_mb": round(proc.peak_rss_tree_mb),
        "items_written": items,
        # Σ write seconds: of this process and of the partitions (worker-seconds, they overlap), so
        # this is one writer's rate.
        "items_per_second": round(items / write_seconds) if write_seconds else None,
        "run_items_per_second": round(items / proc.wall_seconds),
        "stages": stages,
        "recall_at_10": {m["handle"]: m["recall_at_10"] for m in models},
        "min_recall": min_recall if min_recall is not None else GeneratorSettings.model_fields["min_recall"].default,
        "generator_seconds": round(report["total_seconds"], 1),
        "peak_rss_process_mb": round(proc.peak_rss_mb),
        "peak_pss_mb": round(proc.peak_pss_tree_mb),
        "workers": workers,
        "run_id": report["run_id"],
        "cpu_seconds": round(proc.cpu_seconds, 1),
        "machine_cpu_pct": round(proc.machine_cpu_pct, 1),
        "loadavg_1min": load.summary(),
        **({"dynamodb_local_cpu_seconds": round(db_cpu, 1)} if sink == "write" else {"export_dir": str(export_dir.relative_to(REPO))}),
        "measured_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }


def load_export(export_dir: Path, items: int, data_dir: Path, port: int, timeout: float) -> dict:
    """``similar-users-load`` of one export into DynamoDB Local, timed: ``{items, seconds, items_per_second}``."""
    out = BENCH / "out"
    env = {**child_env(port, TABLE_PREFIX + "_load", data_dir), "KEEP_RUNS": "1"}
    cmd = [sys.executable, "-m", "recommender.cli.load", str(export_dir)]
    log(f"loading {items:,} items into DynamoDB Local: similar-users-load {export_dir}")
    jpid = java_pid(port)
    db_cpu = cpu(jpid)
    with LoadSampler() as load:
        proc = run_measured(cmd, env=env, cwd=REPO, log_path=out / f"{export_dir.name}-load.log", timeout=timeout,
                            interval=0.5)
    if proc.exit_code != 0:
        raise RuntimeError(f"similar-users-load failed (exit {proc.exit_code}); see {out / f'{export_dir.name}-load.log'}")
    return {"items": items, "seconds": round(proc.wall_seconds, 1), "items_per_second": round(items / proc.wall_seconds),
            "peak_rss_mb": round(proc.peak_rss_tree_mb), "dynamodb_local_cpu_seconds": round(cpu(jpid) - db_cpu, 1),
            "loadavg_1min": load.summary()}


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

def timed_load(local: dict, args: argparse.Namespace, data_dir: Path) -> dict:
    """The local run's export loaded into this benchmark's own DynamoDB Local, timed."""
    with dynamodb_local(args.dynamodb_port, data_dir):
        warmup = warm_up_dynamodb(args.dynamodb_port, 2, 3000) if args.warmup else []
        load = load_export(REPO / local["export_dir"], local["items_written"], data_dir, args.dynamodb_port, args.timeout)
        load["warmup"] = warmup
    log(f"loaded {load['items']:,} items into DynamoDB Local in {load['seconds']:,.0f} s ({load['items_per_second']:,} items/s)")
    return load


def load_recorded(runs: dict, args: argparse.Namespace, data_dir: Path) -> int:
    """``--load-only``: the timed load of the export of the local run recorded in ``scale.json``,
    when its export is still on disk and is that run's (same run id)."""
    key = f"{args.users}-local-{args.search}-export"
    local = runs.get(key)
    if local is None:
        raise SystemExit(f"error: {SCALE_JSON.name} holds no run {key}: run the generator first")
    manifest = REPO / local["export_dir"] / "manifest.json"
    run_id = json.loads(manifest.read_text())["run_id"] if manifest.is_file() else None
    if run_id != local["run_id"]:
        raise SystemExit(f"error: {manifest} is not the export of run {local['run_id']} (found {run_id})")
    local["dynamodb_local_load"] = timed_load(local, args, data_dir)
    write_outputs(runs)
    return 0


def write_outputs(runs: dict) -> None:
    """``benchmarks/results/scale.json`` only: ``scripts/render_docs.py`` (``make docs``) renders its tables."""
    SCALE_JSON.write_text(json.dumps({"schema": 1, "runs": runs}, indent=2) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1_000_000, help="synthetic users (default: %(default)s)")
    p.add_argument("--engines", default="local,dask", help="comma-separated, run in this order (default: %(default)s)")
    p.add_argument("--search", choices=("exact", "ann", "auto"), default="auto", help="default: %(default)s")
    p.add_argument("--sink", choices=("export", "write"), default="export",
                   help="export: files, then the local run's export loaded into DynamoDB Local; write: straight into "
                        "DynamoDB Local (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="Dask LocalCluster worker processes (default: %(default)s)")
    p.add_argument("--dynamodb-port", type=int, default=int(os.environ.get("SCALE_DYNAMODB_PORT", 8200)),
                   help="own DynamoDB Local port (default: %(default)s, env SCALE_DYNAMODB_PORT)")
    p.add_argument("--timeout", type=float, default=4 * 3600.0, help="per generator run, seconds (default: %(default)s)")
    p.add_argument("--fresh-data", action="store_true", help="regenerate the synthetic data even when cached")
    p.add_argument("--no-load", dest="load", action="store_false",
                   help="--sink export: do not load the local run's export into DynamoDB Local")
    p.add_argument("--load-only", action="store_true",
                   help="--sink export: no generator run; time the load of the recorded local run's export (still on "
                        "disk, the same run id) into DynamoDB Local and add it to that run's entry")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="no throw-away writes to warm DynamoDB Local's JVM before it is written to (as make bench does)")
    p.add_argument("--compare-items", action="store_true",
                   help="--sink write: also read both runs' tables back and compare every item's lists (~3 min per 1M items)")
    p.add_argument("--min-recall", type=float, default=None,
                   help="the generator's MIN_RECALL (default: its setting, 0.95); 0 measures a run whose approximate "
                        "search misses the floor instead of stopping it, and the entry says so")
    args = p.parse_args(argv)
    args.engines = [e for e in args.engines.split(",") if e]
    if not args.engines or any(e not in ("local", "dask") for e in args.engines):
        p.error("--engines: local, dask or both")
    return args


@contextmanager
def dynamodb_local(port: int, data_dir: Path):
    """This benchmark's own DynamoDB Local (in memory), its tables of an earlier killed run dropped."""
    log(dynamodb("start", port))
    try:
        for prefix in (TABLE_PREFIX, TABLE_PREFIX + "_load"):
            drop_tables(child_env(port, prefix, data_dir), prefix)
        yield
    finally:
        log(dynamodb("stop", port))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = json.loads(SCALE_JSON.read_text())["runs"] if SCALE_JSON.is_file() else {}
    (BENCH / "out").mkdir(parents=True, exist_ok=True)
    data = make_data(args.users, BENCH / "out", args.fresh_data)
    data_dir = Path(data["dir"])
    if args.load_only:
        return load_recorded(runs, args, data_dir)
    # Export runs are measured without the emulator: its JVM would share the cores and the memory.
    with dynamodb_local(args.dynamodb_port, data_dir) if args.sink == "write" else nullcontext():
        done: list[dict] = []
        for engine in args.engines:
            warmup = warm_up_dynamodb(args.dynamodb_port, 2, 3000) if args.warmup and args.sink == "write" else []
            run = run_one(args.users, engine, args.search, args.sink, args.workers, data_dir, args.dynamodb_port,
                          args.timeout, args.min_recall)
            run["data"] = {k: v for k, v in data.items() if k != "dir"}
            if warmup:
                run["dynamodb_warmup"] = warmup
            if done:
                run["compared_with"] = compare_checksums(done[0], run)
                if args.compare_items and args.sink == "write":
                    run["compared_items_with"] = compare_lists(args.dynamodb_port, done[0], run)
            done.append(run)
            suffix = "" if args.sink == "write" else f"-{args.sink}"
            runs[f"{args.users}-{engine}-{args.search}{suffix}"] = run
            write_outputs(runs)
            log(f"{args.users:,} users, {engine}: {run['total_seconds']:,.0f} s, peak RSS {run['peak_rss_mb']:,} MB, "
                f"{run['items_written']:,} items")
    local = next((run for run in done if run["engine"] == "local"), None)
    if args.sink == "export" and args.load and local is not None:  # after the runs: one measurement at a time
        local["dynamodb_local_load"] = timed_load(local, args, data_dir)
        write_outputs(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
