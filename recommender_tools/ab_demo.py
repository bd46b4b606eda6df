"""A simulated A/B experiment, end to end (``make ab-demo``, ``similar-users-ab-demo``).

1. Synthetic data with hidden communities (``--data-dir``; generated when ``ground_truth.csv``
   is missing) and the generator for the two models of the experiment, into DynamoDB under the
   table prefix ``--table-prefix`` (reused when both models are already published there).
2. A fresh experiment file (``.run/ab-demo/experiments.toml`` of the working directory) running the two models 50/50,
   and gunicorn on a free loopback port serving with it (the demo's exposure and event tables
   are emptied first).
3. Simulated users, ``--connections`` at a time, bounded by ``--requests`` and
   ``--max-seconds``: each asks for its similar users without a model, and clicks each shown
   neighbour with probability ``--p-in`` when the neighbour is in the user's hidden community
   (``ground_truth.csv``) and ``--p-out`` otherwise (and dismisses some of the others), sending
   ``POST /feedback`` a moment later as a person would (a fifth of the clicks in the community
   are followed by a follow).  The demo then waits until the server has stored every exposure
   and event (its writers' counters in ``/metrics``), bounded in time.
4. The report (``docs/ab/<experiment>/``), then the check: the winner must be the model with the
   higher planted-community precision of the lists actually shown, with p < 0.01.

Everything talks to 127.0.0.1 only.  Exit 0 when the check holds, 1 otherwise.  Paths are the
working directory's: the installed command needs no checkout (the generator and gunicorn run with
the interpreter running the demo).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

RUN_DIR = Path(".run") / "ab-demo"
CONTROL, TREATMENT = "tfidf_user_interest", "knn_collab_filtering_user_course_view"
EXPERIMENT_FILE = """[[experiment]]
name = "{name}"
salt = "{salt}"
status = "running"
start = {start}
end = {end}
control = "interest"
arms = [
  {{ name = "interest", model = "{control}", weight = 1 }},
  {{ name = "views", model = "{treatment}", weight = 1 }},
]
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="similar-users-ab-demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--users", type=int, default=10_000, help="users when generating data (default: %(default)s)")
    parser.add_argument("--table-prefix", default="ab_demo", help="DynamoDB table prefix of the demo (default: %(default)s)")
    parser.add_argument("--experiment", default="demo-interest-vs-views")
    parser.add_argument("--requests", type=int, default=8000, help="simulated requests (default: %(default)s)")
    parser.add_argument("--max-seconds", type=float, default=240, help="time bound of the traffic (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--p-in", type=float, default=0.30, help="click probability, same community (default: %(default)s)")
    parser.add_argument("--p-out", type=float, default=0.03, help="click probability, other community (default: %(default)s)")
    parser.add_argument("--p-dismiss", type=float, default=0.05, help="dismissal probability, other community")
    parser.add_argument("--out-dir", type=Path, default=Path("docs/ab"))
    parser.add_argument("--seed", type=int, default=11)
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"[ab-demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_data(args) -> dict[int, int]:
    truth = args.data_dir / "ground_truth.csv"
    if not truth.is_file():
        from recommender_tools.datagen import generate

        say(f"generating {args.users:,} synthetic users into {args.data_dir}/")
        generate(args.data_dir, users=args.users, seed=7)
    import pandas as pd

    frame = pd.read_csv(truth)
    return dict(zip(frame["user_handle"].astype(int), frame["community"].astype(int)))


def ensure_published(settings, env: dict[str, str], args) -> None:
    from recommender.store.dynamo import DynamoStore

    published = {p.model_handle for p in DynamoStore.for_api(settings).pointers()}
    if {CONTROL, TREATMENT} <= published:
        say(f"both models already published under {args.table_prefix}: reusing them")
        return
    say("running the generator for the two models (about a minute)")
    subprocess.run([sys.executable, "-m", "recommender.cli.generate", "--models", f"{CONTROL},{TREATMENT}",
                    "--data-dir", str(args.data_dir), "--no-progress"], env=env, check=True, timeout=1800)


def fresh_ab_tables(settings) -> None:
    from recommender.experiments.exposures import table_names, writer_store

    store = writer_store(settings)
    for name in table_names(store.prefix):
        store.drop_table(name)
        store.client.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def serve(env: dict[str, str], log_path: Path):
    """gunicorn with the service's settings file but gthread workers (2 x 4 threads: what the demo's
    report was produced with), on a free loopback port, in its own process group; ``stop()`` is a graceful SIGTERM, in which each
    worker drains its exposure queue."""
    from recommender_tools.server import Gunicorn

    return Gunicorn(Path.cwd(), env, log_path, workers=2, extra_args=["--worker-class", "gthread", "--threads", "4"])


class Traffic:
    """Simulated users; every loop bounded by count and time."""

    def __init__(self, port: int, community: dict[int, int], args):
        self.port, self.community, self.args = port, community, args
        self.users = sorted(community)
        self.deadline = time.monotonic() + args.max_seconds
        self.lock = threading.Lock()
        self.remaining = args.requests
        self.shown: dict[str, list[tuple[int, bool]]] = {}  # model → (neighbours in community) per answer
        self.stats = {"answers": 0, "errors": 0, "feedback_202": 0, "feedback_other": 0}

    def _take(self) -> bool:
        with self.lock:
            if self.remaining <= 0 or time.monotonic() > self.deadline:
                return False
            self.remaining -= 1
            return True

    def _post(self, conn, path: str, body: dict) -> tuple[int, dict | list | None]:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None

    def worker(self, index: int) -> None:
        rng = random.Random(self.args.seed * 1000 + index)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        pending: list[tuple[float, dict]] = []  # feedback due at a time (a person takes a moment)
        while self._take():
            user = rng.choice(self.users)
            try:
                status, body = self._post(conn, "/similar-users/", {"user_handle": user})
                if status == 200 and isinstance(body, list):
                    self._react(rng, user, body[0], pending)
                elif status != 404:
                    self.stats["errors"] += 1
                now = time.monotonic()
                while pending and pending[0][0] <= now:
                    self._feedback(conn, pending.pop(0)[1])
            except (OSError, http.client.HTTPException, ValueError):
                self.stats["errors"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        for due, body in pending:
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                self._feedback(conn, body)
            except (OSError, http.client.HTTPException, ValueError):
                self.stats["errors"] += 1
        conn.close()

    def _react(self, rng: random.Random, user: int, answer: dict, pending: list) -> None:
        own = self.community.get(user)
        flags = [self.community.get(n) == own for n in answer["similar_users"]]
        with self.lock:
            self.stats["answers"] += 1
            self.shown.setdefault(answer["model_handle"], []).extend(flags)
        due = time.monotonic() + 0.5
        for neighbour, same in zip(answer["similar_users"], flags):
            event = None
            if rng.random() < (self.args.p_in if same else self.args.p_out):
                event = "click"
                if same and rng.random() < 0.2:  # some clicks in the community end in a follow
                    pending.append((due + 0.5, {"request_id": answer["request_id"], "user_handle": user,
                                                "similar_user_handle": neighbour, "event": "follow"}))
            elif not same and rng.random() < self.args.p_dismiss:
                event = "dismiss"
            if event:
                pending.append((due, {"request_id": answer["request_id"], "user_handle": user,
                                      "similar_user_handle": neighbour, "event": event}))

    def _feedback(self, conn, body: dict) -> None:
        status, _ = self._post(conn, "/feedback", body)
        if status == 404:  # the exposure not stored yet by the other worker: once more, a bit later
            time.sleep(1.0)
            status, _ = self._post(conn, "/feedback", body)
        with self.lock:
            self.stats["feedback_202" if status == 202 else "feedback_other"] += 1

    def written(self) -> dict[str, float]:
        """Records the server's writers have finished with (written, failed or dropped), by kind,
        summed over the workers."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        done = {"exposure": 0.0, "event": 0.0}
        for line in text.splitlines():
            if line.startswith("similar_users_ab_log_writes_total{") or line.startswith("similar_users_ab_duplicate_events_total{"):
                kind = "exposure" if 'kind="exposure"' in line else "event"
                done[kind] += float(line.rsplit(" ", 1)[1])
        return done

    def drain(self, max_seconds: float = 300) -> dict[str, float]:
        """Wait (bounded) until the server has stored every exposure and accepted event."""
        deadline = time.monotonic() + max_seconds
        done = self.written()
        while time.monotonic() < deadline and (
                done["exposure"] < self.stats["answers"] or done["event"] < self.stats["feedback_202"]):
            time.sleep(1)
            done = self.written()
        return done

    def run(self) -> None:
        threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.args.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.args.max_seconds + 60)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from recommender.cli.ab_report import write
    from recommender.config import ApiSettings, load_env_file
    from recommender.experiments import definitions, reading, report
    from recommender.experiments.exposures import writer_store

    load_env_file()  # .env of the working directory; the environment wins
    started = time.monotonic()
    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL") or "http://127.0.0.1:8000"
    run_dir = RUN_DIR.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    experiments = run_dir / "experiments.toml"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    experiments.write_text(EXPERIMENT_FILE.format(
        name=args.experiment, salt=f"{args.experiment}-{args.seed}", control=CONTROL, treatment=TREATMENT,
        start=(now - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        end=(now + timedelta(days=1)).isoformat().replace("+00:00", "Z")))
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": endpoint, "DYNAMODB_TABLE": args.table_prefix,
           "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
           "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
           "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"), "API_KEYS": "",
           "EXPERIMENTS_FILE": str(experiments), "LOG_LEVEL": "WARNING"}
    prometheus = run_dir / "prometheus"  # the workers' metrics summed: the demo waits on them
    shutil.rmtree(prometheus, ignore_errors=True)
    prometheus.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prometheus)
    settings = ApiSettings(dynamodb_endpoint_url=endpoint, dynamodb_table=args.table_prefix, experiments_file=str(experiments))

    community = ensure_data(args)
    ensure_published(settings, env, args)
    fresh_ab_tables(settings)
    server = serve(env, run_dir / "gunicorn.log").__enter__()
    say(f"gunicorn on 127.0.0.1:{server.port}; {args.requests:,} simulated requests, {args.connections} at a time "
        f"(at most {args.max_seconds:.0f} s); clicks: p={args.p_in} same community, p={args.p_out} otherwise")
    traffic = Traffic(server.port, community, args)
    try:
        t0 = time.monotonic()
        traffic.run()
        elapsed = time.monotonic() - t0
        say(f"traffic done in {elapsed:.0f} s; waiting for the writers to store everything")
        done = traffic.drain()
        say(f"stored: {done['exposure']:.0f} exposures, {done['event']:.0f} events "
            f"({time.monotonic() - t0 - elapsed:.0f} s after the traffic)")
    finally:
        server.stop()  # graceful: the workers write what is still queued
    say(f"simulated: {traffic.stats}")

    experiment = definitions.load(experiments).get(args.experiment)
    exposures, events = reading.read(writer_store(settings), args.experiment)
    result = report.build(experiment, exposures, events, alpha=0.01)
    paths = write(result, args.out_dir)
    print(report.markdown(result))
    precision = {model: sum(flags) / len(flags) for model, flags in traffic.shown.items() if flags}
    print("\nPlanted-community precision of the lists shown: "
          + ", ".join(f"`{m}` {p:.3f}" for m, p in sorted(precision.items(), key=lambda kv: -kv[1])))
    better = max((a for a in experiment.arms), key=lambda a: precision.get(a.model, -1))
    winner = next((f for f in result.variants if f.variant == result.winner), None)
    ok = winner is not None and winner.variant == better.name and (
        winner.p_value is None or winner.p_value < 0.01)
    for warning in result.warnings:
        print(f"\n!!! {warning}", file=sys.stderr)
    print(f"\nwrote {', '.join(map(str, paths))}; whole demo {time.monotonic() - started:.0f} s")
    print(f"CHECK {'PASSED' if ok else 'FAILED'}: the report's winner is "
          f"{result.winner or 'none'}; the arm with the higher planted precision is {better.name} ({better.model})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
