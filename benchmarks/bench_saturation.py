#!/usr/bin/env python
"""Closed-loop overload against ``make serve``'s gunicorn under several ``MAX_IN_FLIGHT`` bounds, in the same minutes.

    python -m benchmarks.bench_saturation                       # bounds 16, 32, 64; 2 rounds of 20 s each
    python -m benchmarks.bench_saturation --bounds 0,32 --rounds 3 --connections 64

Why a separate benchmark: the default bound is a trade-off that ``make bench`` (one bound) cannot
show, and on a shared 2-core machine figures taken minutes apart move more than the bounds differ.
So the bounds run interleaved, round after round, each on a fresh server (2 gevent workers, item
cache on) over the same 10,000-user run (generated once into its own DynamoDB Local), under the
same load as ``make bench``'s overload phase (wrk, Zipf mix of all models, ``/health`` probed on
a fresh connection meanwhile).  Writes ``benchmarks/results/saturation.json``; ``make docs``
renders it into docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import run_bench as rb
from benchmarks.bench_api import API_PORT, run_python_load, zipf_sequence
from recommender_tools.server import Gunicorn

OUT_JSON = rb.BENCH / "results" / "saturation.json"
USERS = 10_000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bounds", default="16,32,64", help="MAX_IN_FLIGHT values, comma-separated (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=20.0, help="each load (default: %(default)s)")
    p.add_argument("--connections", type=int, default=rb.OVERLOAD_CONNECTIONS)
    p.add_argument("--dynamodb-port", type=int, default=8150)
    args = p.parse_args(argv)
    wrk = rb.ensure_wrk(rb.log)
    if not wrk:
        print("error: wrk is needed (make bench installs it)", file=sys.stderr)
        return 1
    out = rb.BENCH / "out" / "saturation"
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(rb.make_data(USERS, rb.BENCH / "out", False)["dir"])
    bounds = [int(b) for b in args.bounds.split(",")]
    rb.log(rb.dynamodb("start", args.dynamodb_port))
    runs: list[dict] = []
    try:
        env = rb.child_env(args.dynamodb_port, "bench_saturation", data_dir)
        rb.drop_tables(env, "bench_saturation")
        rb.run_generator(USERS, data_dir, env, tuple(rb.ALL_MODELS), out, 1800)
        mix = _mix(env, data_dir)
        for rnd in range(args.rounds):
            for bound in bounds:
                prometheus = out / "prometheus"
                shutil.rmtree(prometheus, ignore_errors=True)
                prometheus.mkdir()
                server_env = {**env, "MAX_IN_FLIGHT": str(bound), "PROMETHEUS_MULTIPROC_DIR": str(prometheus)}
                rb.log(f"round {rnd + 1}/{args.rounds}: MAX_IN_FLIGHT={bound}, {args.connections} connections, {args.seconds:.0f} s")
                with Gunicorn(rb.REPO, server_env, out / "gunicorn.log", port=API_PORT) as server:
                    run_python_load(server.port, mix, seconds=3, connections=2, max_requests=2000)  # warm-up
                    run = rb.api_load(server.port, "Zipf mix, all models, item cache on", mix, args.seconds,
                                      args.connections, 0, out, wrk)
                runs.append({"max_in_flight": bound, "round": rnd + 1, **_summary(run)})
    finally:
        rb.log(rb.dynamodb("stop", args.dynamodb_port))
    result = {"schema": 1, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"), "commit": rb.commit(),
              "connections": args.connections, "seconds": args.seconds, "workers": 2, "users": USERS, "runs": runs,
              "median": {str(b): _median([r for r in runs if r["max_in_flight"] == b]) for b in bounds}}
    OUT_JSON.write_text(json.dumps(result, indent=1) + "\n")
    rb.log(f"wrote {OUT_JSON.relative_to(rb.REPO)} (make docs renders it)")
    return 0


def _mix(env: dict, data_dir: Path) -> list:
    _, pairs, _ = rb.request_pairs(env, data_dir, tuple(rb.ALL_MODELS), 2000)
    return zipf_sequence(pairs, 20_000, 1.1)


def _summary(run: dict) -> dict:
    answered, health = run["answered"], run["health"]
    return {"answered_per_second": round(answered["calls"] / run["seconds"], 1), "answered_p50_ms": answered["p50_ms"],
            "answered_p99_ms": answered["p99_ms"], "answered_max_ms": answered["max_ms"], "shed_share": run["shed_share"],
            "timeouts": run["timeouts"], "health_p50_ms": health.get("p50_ms"), "health_max_ms": health.get("max_ms"),
            "health_probes": health.get("calls"), "health_failures": health.get("failures"),
            "loadavg_start": run["loadavg_start"][0]}


def _median(runs: list[dict]) -> dict:
    keys = [k for k in runs[0] if k not in ("max_in_flight", "round")]
    return {k: round(statistics.median(r[k] for r in runs if r[k] is not None), 3) for k in keys}


if __name__ == "__main__":
    sys.exit(main())
