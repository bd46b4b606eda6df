"""``make bench``'s correctness oracle (scikit-learn's brute force, ``benchmarks/reference.py``) cannot fail silently:
a neighbour set that differs, a model left out, or a reference that does not run ends the bench with exit 1."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from benchmarks.reference import TOP_N, compare
from benchmarks.run_bench import oracle_problems
from recommender.topk import top_k_cosine
from tests.conftest import LOCAL_PORT, ROOT


def _reference(vectors: np.ndarray, users: np.ndarray, ours: list[list[int]], ours_scores: list[list[float]]) -> dict:
    dist, idx = NearestNeighbors(n_neighbors=TOP_N + 2, metric="cosine", algorithm="brute").fit(vectors).kneighbors(vectors)
    return {"models": {"m": compare(users, np.arange(len(users)), ours, ours_scores, idx, dist)}}


def test_a_neighbour_set_other_than_scikit_learns_is_a_failure_naming_the_user():
    rng = np.random.default_rng(3)
    vectors = rng.random((300, 16)).astype(np.float32)
    users = np.arange(1, 301, dtype=np.int64)
    mine = top_k_cosine(vectors, users, TOP_N)
    ours = [row.tolist() for row in mine.similar]
    scores = [row.tolist() for row in mine.scores]
    right = _reference(vectors, users, ours, scores)
    assert right["models"]["m"]["compared_strict"] > 250  # continuous vectors: hardly any tie at the cut-off
    assert oracle_problems(right, ["m"]) == []

    # One user's 10th neighbour swapped for the user least like it.
    sims = vectors @ vectors[0] / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(vectors[0]))
    ours[0][-1] = int(users[np.argmin(sims)])
    problems = oracle_problems(_reference(vectors, users, ours, scores), ["m"])
    assert len(problems) == 1 and problems[0].startswith("m: 1 user(s)") and "user 1:" in problems[0], problems


def test_a_model_left_out_or_never_compared_is_a_failure():
    never = {"compared_strict": 0, "identical_strict": 0, "short_lists": 0, "short_identical": 0, "tied_skipped": 40}
    problems = oracle_problems({"models": {"b": never}}, ["a", "b"])
    assert problems == ["a: not in the reference's output", "b: no user compared (every list tied at the cut-off)"]


@pytest.mark.slow  # datagen and a generator run, twice
def test_make_bench_fails_when_the_reference_does_not_run_and_passes_when_it_agrees(dynamodb_endpoint, tmp_path):
    def bench(ref_models: str) -> tuple[subprocess.CompletedProcess, dict]:
        out_json = tmp_path / f"{ref_models}.json"
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.run_bench", "--users", "317", "--models", "tfidf_user_interest",
             "--ref-models", ref_models, "--no-api", "--warmup-passes", "0", "--dynamodb-port", str(LOCAL_PORT),
             "--out-json", str(out_json)], cwd=ROOT, capture_output=True, text=True, timeout=600)
        return result, json.loads(out_json.read_text())

    failed, results = bench("no_such_model")
    assert failed.returncode == 1, failed.stderr[-3000:]
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 317 users: the scikit-learn reference did not run (exit 1: "), last
    assert "no_such_model" in last
    assert results["sizes"][0]["reference"]["failed"] in last

    passed, results = bench("tfidf_user_interest")
    assert passed.returncode == 0, passed.stderr[-3000:]
    reference = results["sizes"][0]["reference"]
    assert reference.get("passed") is True and "failed" not in reference
    assert reference["models"]["tfidf_user_interest"]["compared_strict"] > 0
