"""Slow clients against the ways of serving the API: the figures behind the choice of
gevent workers (docs/operations/index.md, slow clients).

For each set-up: throughput and latency of ``POST /similar-users/`` under wrk (4 connections),
then 64 clients that send their headers and part of a body and stall, and, while they are
connected, 20 rounds of ``GET /health`` + ``POST /similar-users/`` (client timeout 5 s).

Set-ups: ``gthread`` (what ``make serve`` ran before: 2 workers x 4 threads), ``gevent`` (the
settings of ``recommender/api/gunicorn_conf.py``, what ``make serve`` runs now) and, when nginx is
installed, ``nginx+gthread`` (nginx buffering each request in front of the gthread set-up).

    .venv/bin/python benchmarks/bench_slow_clients.py        # DynamoDB Local on DYNAMODB_ENDPOINT_URL

Every loop is bounded in count and time; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_api import API_PORT, ensure_wrk, run_wrk
from recommender_tools.server import Gunicorn, free_port

SLOW_CLIENTS = 64
ROUNDS = 20
TIMEOUT = 5.0
NGINX_CONF = """
worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};
  client_header_timeout 10s; client_body_timeout 10s; client_max_body_size 4k;
  upstream app {{ server 127.0.0.1:{upstream}; keepalive 8; }}
  server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}
}}
"""


def seed(endpoint: str) -> str:
    from recommender.models.registry import MODEL_HANDLES
    from recommender.store.dynamo import DynamoStore
    from recommender.store.items import StoredItem
    from tests.conftest import local_settings_class, publish

    table = f"bench_slow_{uuid.uuid4().hex[:8]}"
    settings = local_settings_class()(dynamodb_endpoint_url=endpoint, dynamodb_table=table)
    items = [StoredItem.of(999, m, [(2, 0.9), (3, 0.8)], run_id="r1", generated_at="2026-11-28T00:00:00Z")
             for m in MODEL_HANDLES]
    publish(DynamoStore.for_generator(settings), "20260101T000000Z-bench000", items)
    return table


def request(port: int, method: str, path: str, body: bytes = b"") -> float:
    """Seconds for one request on a new connection; inf when it did not complete within TIMEOUT."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
            if body:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            sock.sendall(head.encode() + b"\r\n" + body)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            return float("inf")
    except OSError:
        return float("inf")
    return time.perf_counter() - started


def with_slow_clients(port: int) -> dict:
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"POST /similar-users/ HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"user_handle\": ")
            slow.append(sock)
        time.sleep(0.5)
        rounds = [request(port, "GET", "/health") + request(port, "POST", "/similar-users/", b'{"user_handle": 999}')
                  for _ in range(ROUNDS)]
    finally:
        for sock in slow:
            sock.close()
    done = [r for r in rounds if r != float("inf")]
    return {"rounds_completed": len(done), "rounds": ROUNDS,
            "round_median_ms": round(statistics.median(done) * 1000, 1) if done else None,
            "round_max_ms": round(max(done) * 1000, 1) if done else None}


def measure(name: str, port: int, wrk: str | None, workdir: Path) -> dict:
    result = {"setup": name}
    if wrk:
        load = run_wrk(wrk, port, [(999, "tfidf_user_interest")], 10, 4, workdir / f"{name}.lua")
        result.update(requests_per_second=load["requests_per_second"], p50_ms=load["p50_ms"], p99_ms=load["p99_ms"])
    result.update(with_slow_clients(port))
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL", "http://127.0.0.1:8000")
    table = seed(endpoint)
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": endpoint, "DYNAMODB_TABLE": table, "API_KEYS": "",
           "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
           "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    wrk = ensure_wrk(print)
    gthread = ["--worker-class", "gthread", "--threads", "4"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with Gunicorn(REPO, env, workdir / "gthread.log", extra_args=gthread, port=API_PORT) as server:
            results.append(measure("gthread", server.port, wrk, workdir))
        with Gunicorn(REPO, env, workdir / "gevent.log", port=API_PORT) as server:
            results.append(measure("gevent", server.port, wrk, workdir))
        if shutil.which("nginx"):
            with Gunicorn(REPO, env, workdir / "upstream.log", extra_args=gthread, port=API_PORT) as server:
                port = free_port()
                (workdir / "nginx.conf").write_text(NGINX_CONF.format(dir=workdir, upstream=server.port, port=port))
                nginx = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"])
                try:
                    time.sleep(1.0)
                    results.append(measure("nginx+gthread", port, wrk, workdir))
                finally:
                    nginx.terminate()
                    nginx.wait(10)
    print("| set-up | requests/s (4 conn.) | p50 ms | p99 ms | rounds answered with 64 slow clients | round median / max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['setup']} | {r.get('requests_per_second', '-')} | {r.get('p50_ms', '-')} | {r.get('p99_ms', '-')} | "
              f"{r['rounds_completed']}/{r['rounds']} | {r['round_median_ms']} / {r['round_max_ms']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
