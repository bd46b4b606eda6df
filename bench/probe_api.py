#!/usr/bin/env python
"""Prototype for the API overhead (not run by ``make bench``): the time the Flask app itself
spends on ``POST /similar-users/`` with an in-memory store (no DynamoDB, no HTTP server, no
socket), and the top functions of a cProfile run: what the ~2 ms between a raw ``get_item``
and an HTTP answer are made of.

    .venv/bin/python bench/probe_api.py [--requests 3000] [--log-level INFO|WARNING]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class MemoryStore:
    """Answers every (user, model) with a fixed item, as the DynamoDB store would."""

    def get(self, user_handle: int, model_handle: str) -> dict:
        return {"user_handle": user_handle, "model_handle": model_handle, "similar_users": list(range(2, 12)),
                "scores": [0.9 - i / 100 for i in range(10)], "generated_at": "2026-01-01T00:00:00Z"}

    def ping(self) -> bool:
        return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args()
    os.environ.update(API_KEYS="", PROMETHEUS_MULTIPROC_DIR="", LOG_LEVEL=args.log_level)
    from recommender.api import create_app
    from recommender.config import load_settings

    app = create_app(load_settings(env_file=None), store=MemoryStore())
    import logging

    logging.getLogger("recommender.api.access").handlers  # the access log goes to stderr: silence it cheaply
    sink = open(os.devnull, "w")
    for handler in logging.getLogger().handlers:
        if hasattr(handler, "setStream"):
            handler.setStream(sink)
    client = app.test_client()
    models = ["tfidf_user_interest", "knn_collab_filtering_user_course_view", "dnn_collab_filtering_user_course_level"]
    bodies = [{"user_handle": 1 + i % 5000, "model_handle": models[i % 3]} for i in range(args.requests)]
    for body in bodies[:200]:
        assert client.post("/similar-users/", json=body).status_code == 200
    t0 = time.perf_counter()
    for body in bodies:
        client.post("/similar-users/", json=body)
    per_request_ms = (time.perf_counter() - t0) * 1000 / len(bodies)
    profiler = cProfile.Profile()
    profiler.enable()
    for body in bodies[:1000]:
        client.post("/similar-users/", json=body)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
    print(json.dumps({"requests": len(bodies), "app_ms_per_request": round(per_request_ms, 3), "log_level": args.log_level}))
    print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
