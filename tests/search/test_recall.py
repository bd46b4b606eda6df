"""Recall@10 as the generator measures it, and the MIN_RECALL gate before publishing."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from recommender.search.recall import RecallTooLow, check_recall, recall_at_k, sample_rows
from tests.conftest import ROOT

NAN = np.nan


def test_recall_counts_found_exact_neighbours_and_ties_broken_the_other_way():
    exact = np.array([[1, 2, 3], [4, 5, -1], [-1, -1, -1]])
    exact_s = np.array([[0.9, 0.8, 0.5], [0.7, 0.6, NAN], [NAN, NAN, NAN]], dtype=np.float32)
    approx = np.array([[1, 3, 7], [5, 9, -1], [8, -1, -1]])
    approx_s = np.array([[0.9, 0.5, 0.5], [0.6, 0.2, NAN], [0.1, NAN, NAN]], dtype=np.float32)
    # row 0: 1 and 3 found, 7 ties with the exact 3rd (0.5): 3/3; row 1: 1/2; row 2: no exact neighbour.
    assert recall_at_k(approx, approx_s, exact, exact_s, k=3) == pytest.approx((1.0 + 0.5) / 2)


def test_sample_is_seeded_sorted_and_all_users_when_few():
    np.testing.assert_array_equal(sample_rows(10, 50, 1), np.arange(10))
    first, second = sample_rows(100_000, 2000, 7), sample_rows(100_000, 2000, 7)
    np.testing.assert_array_equal(first, second)
    assert first.size == 2000 and (np.diff(first) > 0).all()


def test_check_recall_refuses_below_the_minimum_only():
    check_recall("m", 0.95, 0.95)
    check_recall("m", None, 0.95)
    with pytest.raises(RecallTooLow, match="recall@10 0.9400 is below MIN_RECALL=0.95"):
        check_recall("m", 0.94, 0.95)


@pytest.mark.slow  # a whole generator run
def test_a_run_under_min_recall_fails_before_publishing(small_dataset, tmp_path):
    """A tiny effort (one of 64 clusters walked per user) misses neighbours: exit 1, nothing written."""
    out = tmp_path / "items.jsonl"
    env = {**os.environ, "ANN_SPARSE_PROBES": "1", "MIN_RECALL": "0.95", "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "run_generator.py", "--data-dir", str(small_dataset), "--models", "knn_collab_filtering_user_course_view",
         "--search", "ann", "--dry-run", str(out), "--no-progress", "--report", str(tmp_path / "report.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "below MIN_RECALL=0.95; not publishing" in done.stderr.strip().splitlines()[-1]
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()


@pytest.mark.slow  # a whole generator run
def test_the_same_run_with_the_default_effort_publishes_and_reports_its_recall(small_dataset, tmp_path):
    out = tmp_path / "items.jsonl"
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "run_generator.py", "--data-dir", str(small_dataset), "--models", "knn_collab_filtering_user_course_view",
         "--search", "ann", "--dry-run", str(out), "--no-progress", "--report", str(report)],
        cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    import json

    entry = json.loads(report.read_text())["models"][0]
    assert entry["search"] == "ann" and entry["recall_at_10"] >= 0.95
    assert out.exists()
