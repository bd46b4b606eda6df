"""The Dask engine (LocalCluster of 2 worker processes) gives the local engine's answers, bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

from recommender.search.exact import exact_top_k
from tests.conftest import ROOT

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def engine():
    from recommender.search.dask_engine import DaskEngine

    engine = DaskEngine(workers=2)
    yield engine
    engine.close()


@pytest.mark.parametrize("kind", ["sparse-postings", "dense-gemm"])
def test_partitioned_exact_search_is_bit_identical_to_the_local_one(engine, kind):
    rng = np.random.default_rng(2)
    if kind == "dense-gemm":
        vectors = rng.normal(size=(2500, 32)).astype(np.float32)
    else:
        vectors = sparse.random(2500, 750, density=0.036, random_state=2, format="csr", dtype=np.float32)
    users = np.sort(rng.choice(10**6, 2500, replace=False)) + 1
    # block_mb=1: ~50 queries per GEMM block, so the search spans many blocks and many tasks.
    local = exact_top_k(vectors, users, 10, block_mb=1)
    remote = engine.top_k(vectors, users, 10, block_mb=1)
    assert engine.workers == 2
    np.testing.assert_array_equal(remote.users, local.users)
    np.testing.assert_array_equal(remote.similar, local.similar)
    assert remote.scores.tobytes() == local.scores.tobytes()


def _dry_run(small_dataset, out, *extra: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "run_generator.py", "--data-dir", str(small_dataset), "--models",
         "tfidf_user_interest,knn_collab_filtering_user_course_view", "--search", "exact", "--dry-run", str(out),
         "--no-progress", "--report", str(out.with_suffix(".report.json")), *extra],
        cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for record in records:  # the only fields that differ between two runs of the same data
        record.pop("run_id"), record.pop("generated_at")
    return records


@pytest.mark.slow  # two whole generator runs
def test_generator_dry_run_with_the_dask_engine_writes_the_local_engines_items(small_dataset, tmp_path):
    local = _dry_run(small_dataset, tmp_path / "local.jsonl")
    remote = _dry_run(small_dataset, tmp_path / "dask.jsonl", "--engine", "dask")
    assert len(local) > 1000
    assert json.dumps(remote) == json.dumps(local)


def test_a_worker_killed_mid_search_still_gives_the_whole_answer(engine):
    """Dask reruns the lost worker's blocks on the other (the vectors are on both): same answer, or an error."""
    import signal
    import threading
    import time

    rng = np.random.default_rng(8)
    vectors = rng.normal(size=(12_000, 32)).astype(np.float32)
    users = np.arange(1, 12_001)
    result: dict = {}
    search = threading.Thread(target=lambda: result.update(answer=engine.top_k(vectors, users, 10, block_mb=1)))
    search.start()
    deadline = time.monotonic() + 60
    while not any(engine.client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = sorted(engine.client.run(os.getpid).items())[0][1]
    os.kill(victim, signal.SIGKILL)
    search.join(timeout=300)
    assert not search.is_alive()
    local = exact_top_k(vectors, users, 10, block_mb=1)
    np.testing.assert_array_equal(result["answer"].similar, local.similar)
    assert result["answer"].scores.tobytes() == local.scores.tobytes()
    assert victim not in engine.client.run(os.getpid).values(), "the killed worker was replaced"
