#!/usr/bin/env python
"""Prototype for the DynamoDB write path (not run by ``make bench``): items/s of
``RunPublisher.write`` against DynamoDB Local for several ``write_threads`` and client settings,
with the CPU each side used (the generator's Python process vs DynamoDB Local's JVM), to tell
which side limits the rate on this 2-core machine.

    DYNAMODB_LOCAL_PORT=8100 scripts/dynamodb_local.sh start    # or bench/run_bench.py's own
    .venv/bin/python bench/probe_write.py --port 8100 --items 5000 --threads 1,4,8

Items have the generator's shape (10 neighbours, 10 scores, run id, timestamp), written to a
throw-away run table (prefix ``bench_probe``) that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from botocore.config import Config  # noqa: E402

from recommender.config import Settings  # noqa: E402
from recommender.store.dynamo import DynamoStore  # noqa: E402
from recommender.store.items import build_items  # noqa: E402
from recommender.store.publisher import RunPublisher  # noqa: E402
from recommender.topk import Neighbours  # noqa: E402


def fake_neighbours(count: int, n: int = 10, seed: int = 0) -> Neighbours:
    rng = np.random.default_rng(seed)
    users = np.arange(1, count + 1, dtype=np.int64)
    similar = rng.integers(1, count + 1, size=(count, n), dtype=np.int64)
    scores = np.sort(rng.random((count, n), dtype=np.float32), axis=1)[:, ::-1].round(6)
    return Neighbours(users, similar, np.ascontiguousarray(scores))


def java_pid(port: int) -> int | None:
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return conn.pid
    return None


def cpu(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--items", type=int, default=5000)
    p.add_argument("--threads", default="1,4,8")
    p.add_argument("--no-validation", action="store_true", help="also try botocore parameter_validation=False")
    args = p.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")
    neighbours = fake_neighbours(args.items)
    jpid = java_pid(args.port)
    variants = [(int(t), True) for t in args.threads.split(",")]
    if args.no_validation:
        variants += [(int(t), False) for t in args.threads.split(",")]
    for threads, validation in variants:
        settings = Settings(dynamodb_endpoint_url=f"http://127.0.0.1:{args.port}", table_name="bench_probe", write_threads=threads)
        store = DynamoStore(settings, Config(retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                                             max_pool_connections=max(10, threads * 2), parameter_validation=validation))
        publisher = RunPublisher(store, write_threads=threads)
        run_id = f"probe-{threads}-{int(validation)}-{int(time.time())}"
        publisher.begin(run_id, ("m",))
        try:
            c0, j0, w0 = own_cpu(), cpu(jpid), time.perf_counter()
            # as the generator does: items built lazily while writing
            written = publisher.write("m", build_items("m", neighbours, run_id, "2026-01-01T00:00:00Z"))
            wall = time.perf_counter() - w0
            c1, j1 = own_cpu(), cpu(jpid)
        finally:
            publisher.abort()  # drops the probe's run table
            publisher.release_lock()
        print(json.dumps({"write_threads": threads, "parameter_validation": validation, "items": written,
                          "seconds": round(wall, 2), "items_per_second": round(written / wall, 1),
                          "client_cpu_pct_of_one_core": round(100 * (c1 - c0) / wall, 1),
                          "dynamodb_local_cpu_pct_of_one_core": round(100 * (j1 - j0) / wall, 1),
                          "machine_loadavg": os.getloadavg()[0]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
