"""Write path benchmark through boto3: item objects against arrays, and who burns the CPU.

``python -m benchmarks.bench_write --data-dir DIR --port 8300 --rounds 3`` fits the TF-IDF and k-NN
models on ``DIR`` (their real items, with reasons, N=10) and writes them into DynamoDB Local on
``--port`` (a throw-away table per variant and round, dropped after) in alternating rounds, so
that other load on the machine slows every variant alike.  Every variant is the generator's
:class:`~recommender.store.writer.BatchWriter` on its botocore client (``DynamoStore.for_generator``):

- ``objects, threads``: item objects (:class:`~recommender.store.items.StoredItem`) encoded one by
  one, ``--threads`` threads of one process;
- ``arrays, threads``: attribute values built straight from the search's arrays (what the
  generator and each partition's worker process do).

Per variant: items/s, the client's CPU per item (this process), the
JVM's CPU per item, and the CPU of DynamoDB Local's one SQLite thread ("SQLiteQueue"; every
item goes through it) per item and as a share of the wall time: near 100%, the database is the
bound.  Two ceilings follow from them: all cores busy with client and JVM (cores × 10⁶ / (client
+ JVM µs per item)), and the SQLite thread alone (10⁶ / its µs per item), whatever the cores.
The load average is recorded with every figure.  ``--out`` writes everything as JSON.

Also the helpers of ``run_bench.py``'s warm-up (:func:`fake_neighbours`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

from recommender.topk import Neighbours

MODELS = ("tfidf_user_interest", "knn_collab_filtering_user_course_view")


def fake_neighbours(count: int, n: int = 10, seed: int = 0) -> Neighbours:
    """``count`` users with ``n`` random neighbours and descending scores (6 decimals, as stored)."""
    rng = np.random.default_rng(seed)
    users = np.arange(1, count + 1, dtype=np.int64)
    similar = rng.integers(1, count + 1, size=(count, n), dtype=np.int64)
    scores = np.sort(rng.random((count, n), dtype=np.float32), axis=1)[:, ::-1].round(6)
    return Neighbours(users, similar, np.ascontiguousarray(scores))


class CpuMeter:
    """CPU seconds of this process (the client), of the JVM, and of the JVM's SQLite thread."""

    def __init__(self, jvm_pid: int):
        self.jvm = psutil.Process(jvm_pid)
        self.me = psutil.Process()

    def _sqlite_thread(self) -> float:
        for thread in self.jvm.threads():
            try:
                name = Path(f"/proc/{self.jvm.pid}/task/{thread.id}/comm").read_text().strip()
            except OSError:
                continue
            if name.startswith("SQLiteQueue"):
                return thread.user_time + thread.system_time
        return float("nan")

    def read(self) -> dict[str, float]:
        return {"client": sum(self.me.cpu_times()[:2]), "jvm": sum(self.jvm.cpu_times()[:2]),
                "sqlite_thread": self._sqlite_thread(), "wall": time.perf_counter()}


def jfr_shares(recording: Path) -> dict[str, float]:
    """Where the JVM spent its CPU: share of JFR execution samples per thread kind and hot method."""
    text = subprocess.run(["jfr", "print", "--events", "jdk.ExecutionSample", "--stack-depth", "64", str(recording)],
                          capture_output=True, text=True, check=True).stdout
    events = text.split("jdk.ExecutionSample")[1:]
    counts: Counter[str] = Counter()
    for event in events:
        thread = re.search(r'sampledThread = "([^"]*)', event)
        counts["thread: SQLiteQueue" if thread and thread.group(1).startswith("SQLiteQueue") else "thread: other"] += 1
        frames = set(re.findall(r"^\s+([\w.$<>]+)\(", event, re.M))
        for method in JFR_METHODS:
            counts[method] += any(f.endswith(method) for f in frames)
    return {k: round(v / max(1, len(events)), 3) for k, v in counts.items()} | {"samples": len(events)}


#: DynamoDB Local's hot spots (inclusive): re-reading the table's schema for every item, parsing
#: requests, storing the item as JSON in SQLite.
JFR_METHODS = ("SQLiteDBAccessJob.getTableSchemaInfo2", "LocalDynamoDBServerHandler.handle",
               "ObjectMapper.writeValueAsBytes", "SQLiteDBAccessJob.getRecordInternal")


def botocore_version() -> str:
    import botocore

    return botocore.__version__


def measure(meter: CpuMeter, items: int, write: Callable[[], int]) -> dict:
    load = os.getloadavg()[0]
    before = meter.read()
    written = write()
    after = meter.read()
    wall = after["wall"] - before["wall"]
    per_item = {k: round(1e6 * (after[k] - before[k]) / written, 1) for k in ("client", "jvm", "sqlite_thread")}
    assert written == items, f"wrote {written} of {items} items"
    return {"items": written, "seconds": round(wall, 2), "items_per_second": round(written / wall),
            "client_us_per_item": per_item["client"], "jvm_us_per_item": per_item["jvm"],
            "sqlite_thread_us_per_item": per_item["sqlite_thread"],
            "sqlite_thread_busy": round((after["sqlite_thread"] - before["sqlite_thread"]) / wall, 3),
            "loadavg_1m_start": round(load, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--port", type=int, default=8300, help="DynamoDB Local's port (not the shared 8000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--jfr", type=Path, help="record the JVM with Java Flight Recorder (jcmd) during the measured rounds")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")

    from benchmarks.bench_procmon import java_pid
    from recommender.config import GeneratorSettings
    from recommender.data.loader import load_tables
    from recommender.models.registry import create_model
    from recommender.store.dynamo import DynamoStore
    from recommender.store.items import ItemBlock, build_items
    from recommender.store.writer import BatchWriter
    from recommender.topk import similar_users

    tables = load_tables(args.data_dir, ("user_interests", "user_course_views"))
    blocks: list[ItemBlock] = []
    for handle in MODELS:
        model = create_model(handle).fit(tables)
        answer = similar_users(model, 10)
        blocks.append(build_items(handle, answer, "bench", "2026-01-01T00:00:00Z", model.explain(answer)))
    count = sum(len(b) for b in blocks)
    settings = GeneratorSettings(dynamodb_endpoint_url=f"http://127.0.0.1:{args.port}", dynamodb_table="bench_write",
                                 write_threads=args.threads)
    store = DynamoStore.for_generator(settings)
    threads = BatchWriter(store.client, args.threads)
    jvm = java_pid(args.port)
    if jvm is None:
        raise SystemExit(f"nothing listens on port {args.port}: start DynamoDB Local there first")
    meter = CpuMeter(jvm)

    def variants(table: str) -> dict[str, Callable[[], int]]:
        return {
            "objects, threads": lambda: sum(threads.write(table, iter(b)) for b in blocks),
            "arrays, threads": lambda: sum(threads.write(table, b) for b in blocks),
        }

    results: dict[str, list[dict]] = {}
    profile: dict[str, float] = {}
    for round_ in range(args.rounds + 1):  # round 0 warms the JVM up and is not kept
        if round_ == 1 and args.jfr:
            subprocess.run(["jcmd", str(jvm), "JFR.start", "name=bench_write", "settings=profile",
                            f"filename={args.jfr.resolve()}"], check=True, capture_output=True)
        for name in variants("-"):
            table = store.create_run_table(f"{round_}-{len(results.get(name, []))}-{time.time_ns()}")
            try:
                figures = measure(meter, count, variants(table)[name])
            finally:
                store.drop_table(table)
            if round_:
                results.setdefault(name, []).append(figures)
            print(f"round {round_}{' (warm-up)' if not round_ else ''}: {name}: " + ", ".join(
                f"{k} {v}" for k, v in figures.items() if k != "items"), flush=True)
    if args.jfr:
        subprocess.run(["jcmd", str(jvm), "JFR.stop", "name=bench_write"], check=True, capture_output=True)
        profile = jfr_shares(args.jfr)

    summary = {name: {key: statistics.median(r[key] for r in rounds) for key in rounds[0] if key != "items"}
               for name, rounds in results.items()}
    print(f"\n{count:,} items (TF-IDF and k-NN at N=10, with reasons), median of {args.rounds} rounds")
    cores = os.cpu_count() or 1
    for s in summary.values():  # the two bounds: all cores on client + JVM, and the JVM's one SQLite thread
        s["cores_bound_items_per_second"] = round(cores * 1e6 / (s["client_us_per_item"] + s["jvm_us_per_item"]))
        s["sqlite_thread_bound_items_per_second"] = round(1e6 / s["sqlite_thread_us_per_item"])
    print("| variant | items/s | client µs/item | JVM µs/item | SQLite thread µs/item (busy) | bound: cores / SQLite thread | load (1 min) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, s in summary.items():
        print(f"| {name} | {s['items_per_second']:,.0f} | {s['client_us_per_item']:.0f} | {s['jvm_us_per_item']:.0f} | "
              f"{s['sqlite_thread_us_per_item']:.0f} ({s['sqlite_thread_busy']:.0%}) | "
              f"{s['cores_bound_items_per_second']:,} / {s['sqlite_thread_bound_items_per_second']:,} | {s['loadavg_1m_start']:.1f} |")
    if profile:
        print(f"\nJVM CPU samples ({profile['samples']:,}, all variants): " + ", ".join(
            f"{k} {v:.0%}" for k, v in profile.items() if k != "samples"))
    if args.out:
        args.out.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cores": os.cpu_count(),
            "python": platform.python_version(), "botocore": botocore_version(), "client": "boto3/botocore",
            "data_dir": str(args.data_dir), "items": count,
            "threads": args.threads, "rounds": results, "median": summary, "jvm_profile": profile}, indent=2) + "\n")


if __name__ == "__main__":
    main()
