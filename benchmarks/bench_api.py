"""API side of the benchmark: the load generator (wrk, or a Python fallback) and the
raw DynamoDB read latency the service's figures are compared with.

Every load loop here is bounded in time and in count, and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

#: BENCH_API_PORT: the API's fixed port (a shared machine's allotted range); else any free one.
API_PORT = int(os.environ.get("BENCH_API_PORT") or 0) or None

WRK_MARK = "WRKJSON "
EACH_MARK = "WRKEACH "

# wrk Lua script: POST bodies cycling through (user_handle, model_handle) pairs that exist in the
# published run, each wrk thread starting at a different offset; done() prints the figures as
# one JSON line (latencies in microseconds).
LUA_TEMPLATE = r"""
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_timespec; int clock_gettime(int clk, bench_timespec *tp); ]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end
local pairs_ = {
%(pairs)s
}
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  i = (tid or 0) * 7919
  ok, shed, other = {}, {}, {}
end
-- Each request carries its send time as its X-Request-ID, which the service echoes: response()
-- gets each answer's own time, whichever of the thread's connections it came on.
function request()
  i = i + 1
  local p = pairs_[(i %% #pairs_) + 1]
  local headers = { ["Content-Type"] = "application/json", ["X-Request-ID"] = string.format("%%.0f", now_us()) }
  return wrk.format("POST", "/similar-users/", headers,
    string.format('{"user_handle": %%d, "model_handle": "%%s"}', p[1], p[2]))
end
function response(status, headers, body)
  local sent = tonumber(headers["X-Request-ID"] or "")
  local us = sent and math.floor(now_us() - sent) or -1  -- -1: an answer without our id (gunicorn's own errors)
  if status >= 200 and status < 300 then ok[#ok + 1] = us
  elseif status == 503 and headers["Retry-After"] then shed[#shed + 1] = us
  else other[#other + 1] = us end
end
%(pacing)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests": %%d, "duration_us": %%d, "bytes": %%d, "errors_connect": %%d, "errors_read": %%d, ' ..
    '"errors_write": %%d, "errors_status": %%d, "errors_timeout": %%d, "latency_mean_us": %%.1f, ' ..
    '"latency_p50_us": %%d, "latency_p90_us": %%d, "latency_p99_us": %%d, "latency_max_us": %%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  for _, t in ipairs(threads) do
    for _, kind in ipairs({"ok", "shed", "other"}) do
      local values = t:get(kind) or {}
      io.write('%(each)s' .. kind .. ' ' .. table.concat(values, ' ') .. '\n')
    end
  end
end
"""


def percentiles_ms(samples_s: list[float]) -> dict:
    a = np.asarray(samples_s, dtype=float) * 1000.0
    if not len(a):
        return {"calls": 0}
    return {
        "calls": int(len(a)),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p90_ms": round(float(np.percentile(a, 90)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "mean_ms": round(float(a.mean()), 3),
        "max_ms": round(float(a.max()), 3),
    }


# -- wrk ----------------------------------------------------------------------------------------

def ensure_wrk(log) -> str | None:
    """Path of wrk, installing it with apt-get when missing and possible; None: use the fallback."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk missing: apt-get install -y wrk")
        try:
            subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=300, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, timeout=300, capture_output=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log(f"could not install wrk: {exc}")
        found = shutil.which("wrk")
    if not found:
        log("wrk unavailable: using the Python load generator")
    return found


def wrk_version(wrk: str | None) -> str | None:
    if not wrk:
        return None
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0].split(" Copyright")[0].strip() if text else None


#: How the load generator is scheduled: ``default`` (the kernel's normal policy) or ``batch``
#: (``SCHED_BATCH``: same share of the CPU, but its wake-ups never preempt a running process).
WRK_SCHEDULING = ("default", "batch")


def _batch_scheduling() -> None:
    os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def run_wrk(wrk: str, port: int, pairs: list[tuple[int, str]], seconds: float, connections: int, script_path: Path,
            delay_ms: int = 0, scheduling: str = "default") -> dict:
    """``delay_ms`` > 0 paces each connection (wrk waits that long after each answer): latency at a
    given request rate, rather than at whatever rate saturates the machine.

    ``scheduling="batch"`` runs wrk under ``SCHED_BATCH`` (Linux).  Why: in a closed loop on the
    server's own cores, every answer wakes a wrk thread, and the kernel lets a waking thread
    preempt the worker that is serving the next request; the worker then waits for a core while
    its request is timed.  Clients on other hosts (production) cannot do that.  Under
    ``SCHED_BATCH`` wrk still takes its share of the same cores, but waits for its turn instead of
    preempting (docs/performance.md has the same-minute comparison)."""
    if scheduling not in WRK_SCHEDULING:
        raise ValueError(f"scheduling {scheduling!r} is not one of {WRK_SCHEDULING}")
    lua_pairs = ",\n".join(f'  {{{u}, "{m}"}}' for u, m in pairs)
    pacing = f"function delay()\n  return {int(delay_ms)}\nend" if delay_ms > 0 else ""
    script_path.write_text(LUA_TEMPLATE % {"pairs": lua_pairs, "mark": WRK_MARK, "each": EACH_MARK, "pacing": pacing})
    threads = max(1, min(connections, 2))
    cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{int(seconds)}s", "--timeout", "2s",
           "-s", str(script_path), f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                         preexec_fn=_batch_scheduling if scheduling == "batch" else None)
    line = next((l for l in out.stdout.splitlines() if l.startswith(WRK_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary (exit {out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
    raw = json.loads(line[len(WRK_MARK):])
    each: dict[str, list[float]] = {"ok": [], "shed": [], "other": []}
    for row in out.stdout.splitlines():
        if row.startswith(EACH_MARK):
            kind, *values = row[len(EACH_MARK):].split()
            each[kind].extend(int(v) / 1e6 if int(v) >= 0 else float("nan") for v in values)
    duration = raw["duration_us"] / 1e6
    answered = len(each["ok"]) + len(each["shed"]) + len(each["other"])
    errors = sum(raw[k] for k in raw if k.startswith("errors_"))
    return {
        "tool": "wrk",
        "threads": threads,
        "connections": connections,
        "delay_ms": delay_ms,
        "load_generator_scheduling": scheduling,
        "seconds": round(duration, 2),
        "requests": raw["requests"],
        "requests_per_second": round(raw["requests"] / duration, 1),
        "p50_ms": raw["latency_p50_us"] / 1000,
        "p90_ms": raw["latency_p90_us"] / 1000,
        "p99_ms": raw["latency_p99_us"] / 1000,
        "mean_ms": round(raw["latency_mean_us"] / 1000, 3),
        "max_ms": raw["latency_max_us"] / 1000,
        "errors": errors,
        "non_2xx": raw["errors_status"],
        "timeouts": raw["errors_timeout"],
        # wrk's percentiles above are "corrected" for coordinated omission (wrk adds samples for every
        # answer slower than twice the mean); these are each answer's own time, by kind of answer.
        "answered": percentiles_ms([t for t in each["ok"] if t == t]),
        "shed": len(each["shed"]),
        "shed_share": round(len(each["shed"]) / answered, 4) if answered else None,
        "shed_p99_ms": percentiles_ms([t for t in each["shed"] if t == t]).get("p99_ms"),
        "other_status": len(each["other"]),
        "raw": raw,
    }


class HealthProbe:
    """``GET /health`` every ``every`` seconds on a fresh connection while a load runs (what a load
    balancer does): each answer's time, status and whether it timed out (``timeout`` seconds)."""

    def __init__(self, port: int, every: float = 0.25, timeout: float = 2.0):
        self.port, self.every, self.timeout = port, every, timeout
        self.times: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            t0 = time.perf_counter()
            try:
                conn.request("GET", "/health")
                response = conn.getresponse()
                response.read()
                self.times.append(time.perf_counter() - t0)
                if response.status != 200:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
            finally:
                conn.close()

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def result(self) -> dict:
        return {**percentiles_ms(self.times), "failures": self.failures}


# -- Python fallback ----------------------------------------------------------------------------

def run_python_load(port: int, pairs: list[tuple[int, str]], seconds: float, connections: int,
                    max_requests: int = 2_000_000) -> dict:
    """Closed-loop load: ``connections`` threads, keep-alive, each request timed; bounded by both."""
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    non_2xx = [0] * connections
    budget = max_requests // connections

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        rng = random.Random(k)
        i = rng.randrange(len(pairs))
        for _ in range(budget):
            if time.perf_counter() >= deadline:
                break
            user, model = pairs[i % len(pairs)]
            i += 1
            body = json.dumps({"user_handle": user, "model_handle": model})
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/similar-users/", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                latencies[k].append(time.perf_counter() - t0)
                if not 200 <= response.status < 300:
                    non_2xx[k] += 1
            except (OSError, http.client.HTTPException):
                errors[k] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    elapsed = time.perf_counter() - started
    every = [x for part in latencies for x in part]
    stats = percentiles_ms(every)
    return {
        "tool": "python (http.client threads; the client shares the 2 cores and the GIL)",
        "threads": connections,
        "connections": connections,
        "seconds": round(elapsed, 2),
        "requests": len(every),
        "requests_per_second": round(len(every) / elapsed, 1),
        **{k: v for k, v in stats.items() if k != "calls"},
        "errors": sum(errors) + sum(non_2xx),
        "non_2xx": sum(non_2xx),
    }


def post(port: int, user: int, model: str) -> tuple[int, dict | list | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", "/similar-users/", json.dumps({"user_handle": user, "model_handle": model}),
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body else None
    finally:
        conn.close()


def zipf_sequence(pairs: list[tuple[int, str]], length: int, exponent: float = 1.1, seed: int = 2) -> list[tuple[int, str]]:
    """A request sequence with a skewed popularity: users ranked at random, user of rank r asked for
    with weight 1/r**exponent (a few users are very popular, most are rare), each request for one
    of the models that covers that user, chosen uniformly (so every model is asked for)."""
    rng = np.random.default_rng(seed)
    by_user: dict[int, list[str]] = {}
    for user, model in pairs:
        by_user.setdefault(user, []).append(model)
    users = list(by_user)
    rng.shuffle(users)
    weights = 1.0 / np.arange(1, len(users) + 1) ** exponent
    picks = rng.choice(len(users), size=length, p=weights / weights.sum())
    return [(users[i], by_user[users[i]][int(rng.integers(len(by_user[users[i]])))]) for i in picks]


def server_metrics(port: int) -> dict:
    """From ``/metrics`` (summed over the workers, multiprocess mode): the item cache's lookups by
    result, and the workers' older garbage collections (count, seconds, and how many took over 10 ms)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    out = {"hit": 0.0, "miss": 0.0, "gc_count": 0.0, "gc_seconds": 0.0, "gc_within_10ms": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "similar_users_item_cache_lookups_total":
                out[sample.labels["result"]] = out.get(sample.labels["result"], 0.0) + sample.value
            elif sample.name == "similar_users_gc_pause_seconds_count":
                out["gc_count"] += sample.value
            elif sample.name == "similar_users_gc_pause_seconds_sum":
                out["gc_seconds"] += sample.value
            elif sample.name == "similar_users_gc_pause_seconds_bucket" and float(sample.labels["le"]) == 0.01:
                out["gc_within_10ms"] += sample.value
    return out


# -- raw DynamoDB reads -------------------------------------------------------------------------

class RawReads:
    """Sequential reads of the same (user, model) pairs by the two raw paths, for the API's baseline.

    ``store_get``: ``DynamoStore.for_api(settings).get`` (pointer cache + ``GetItem`` through the API's
    botocore client, what a request does on a cache miss);
    ``client_get_item``: a plain boto3 ``client.get_item`` on the run table (what a caller's own code
    would do).  One object so a benchmark can take samples in rounds, alternating with the API's
    load, and both see the machine in the same state (``run_bench.run_api``).
    """

    KINDS = ("client_get_item", "store_get")

    def __init__(self, settings, pairs: list[tuple[int, str]]):
        from recommender.store.dynamo import DynamoStore

        self.pairs = pairs
        self.store = DynamoStore.for_api(settings)
        self.tables = {m: self.store.pointer(m).table for m in {m for _, m in pairs}}
        self.client = self.store.client
        self.next = 0
        for k in range(50):  # warm the connection pools and the pointer cache
            user, model = pairs[k % len(pairs)]
            self._plain(user, model)
            self._through_store(user, model)

    def _plain(self, user: int, model: str) -> None:
        response = self.client.get_item(TableName=self.tables[model],
                                        Key={"user_handle": {"N": str(user)}, "model_handle": {"S": model}})
        assert "Item" in response

    def _through_store(self, user: int, model: str) -> None:
        assert self.store.get(user, model) is not None

    def sample(self, calls: int, max_seconds: float) -> dict[str, list[float]]:
        """Seconds per call of each kind, ``calls`` each (fewer if ``max_seconds`` runs out), the
        pairs continuing where the previous sample stopped."""
        out: dict[str, list[float]] = {}
        for kind, fn in (("client_get_item", self._plain), ("store_get", self._through_store)):
            times = out[kind] = []
            deadline = time.perf_counter() + max_seconds
            for k in range(self.next, self.next + calls):
                if time.perf_counter() >= deadline:
                    break
                user, model = self.pairs[k % len(self.pairs)]
                t0 = time.perf_counter()
                fn(user, model)
                times.append(time.perf_counter() - t0)
        self.next += calls
        return out


def pick_pairs(settings, users: list[int], models: list[str], count: int, seed: int = 1) -> tuple[list[tuple[int, str]], int]:
    """``count`` (user, model) pairs that the published run answers (a user a model does not cover is skipped)."""
    from recommender.store.dynamo import DynamoStore

    store = DynamoStore.for_api(settings)
    rng = random.Random(seed)
    pairs, misses = [], 0
    for _ in range(count * 3):
        if len(pairs) >= count:
            break
        user, model = rng.choice(users), rng.choice(models)
        if store.get(user, model) is None:
            misses += 1
            continue
        pairs.append((user, model))
    return pairs, misses
