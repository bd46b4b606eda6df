#!/usr/bin/env python
"""Loading and validation of the four tables at N users: wall time and peak RSS.

    python benchmarks/bench_load.py --users 1000000 [--data-dir /tmp/data-1m] [--code /work/main] [--out benchmarks/results/load.json]

The data is generated once (``python -m recommender_tools.datagen --users N --seed 7``) when the folder
has no tables.  Each ``--code`` checkout (default: this one) loads all four tables with
``load_tables`` in a fresh subprocess, so the peak RSS (``wait4``'s high-water mark) is the
loader's own and one checkout's imports cannot leak into another's.  Passing an older checkout
(e.g. the main branch) measures "before" and "after" on the same files.  The machine is shared:
the load average before and after each run is recorded with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Runs in the child: time ``load_tables`` alone (imports excluded) and count what it returned.
_CHILD = """
import json, sys, time
import pandas, pyarrow  # imported before the clock starts: the figure is the loading itself
from recommender.data.loader import load_tables
t0 = time.perf_counter()
tables = load_tables(sys.argv[1])
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": round(seconds, 2), "rows_read": tables.rows_read,
                  "rows_kept": {n: len(getattr(tables, n)) for n in tables.rows_read}}))
"""


def ensure_data(folder: Path, users: int, seed: int) -> None:
    if (folder / "user_course_views.csv").exists():
        return
    subprocess.run([sys.executable, "-m", "recommender_tools.datagen", "--users", str(users), "--seed", str(seed),
                    "--out", str(folder)], cwd=REPO, check=True)


def measure(code: Path, folder: Path) -> dict:
    """One load of every table by the loader in ``code``: seconds, peak RSS, load average."""
    load_before = os.getloadavg()[0]
    env = {**os.environ, "PYTHONPATH": str(code)}
    with subprocess.Popen([sys.executable, "-c", _CHILD, str(folder)], cwd=code, env=env,
                          stdout=subprocess.PIPE) as child:
        output = child.stdout.read() if child.stdout else b""
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{code}: the loader exited with {child.returncode}")
    figures = json.loads(output.decode().strip().splitlines()[-1])
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    figures.update(code=str(code), commit=commit.stdout.strip() or None, peak_rss_mb=round(usage.ru_maxrss / 1024),
                   cpu_seconds=round(usage.ru_utime + usage.ru_stime, 1),
                   load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, help="default: benchmarks/out/data-N (generated when missing)")
    parser.add_argument("--code", type=Path, action="append",
                        help="checkout whose loader to time (repeatable); default: this one")
    parser.add_argument("--out", type=Path, help="append the figures to this JSON file")
    args = parser.parse_args(argv)
    folder = args.data_dir or REPO / "benchmarks" / "out" / f"data-{args.users}"
    ensure_data(folder, args.users, args.seed)
    results = []
    for code in args.code or [REPO]:
        figures = {"users": args.users, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "cores": os.cpu_count(), **measure(code.resolve(), folder)}
        print(json.dumps(figures), flush=True)
        results.append(figures)
    if args.out:
        previous = json.loads(args.out.read_text()) if args.out.exists() else []
        args.out.write_text(json.dumps(previous + results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
