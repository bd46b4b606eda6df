"""The report's statistics against scipy's own, and the sample-ratio check on skewed logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recommender.experiments import definitions, report
from recommender.experiments.report import EVENT_COLUMNS, EXPOSURE_COLUMNS
from tests.experiments.files import INTEREST, VIEWS, experiment_toml

EXPERIMENT = definitions.parse(experiment_toml("t", arms=(("a", INTEREST, 1), ("b", VIEWS, 1))), "test").experiment[0]


def simulated(users_a: int, users_b: int, ctr_a: float, ctr_b: float, seed: int = 3, fallback: int = 0):
    """One exposure of 10 neighbours per user; each neighbour clicked with the arm's CTR."""
    rng = np.random.default_rng(seed)
    exposures, events = [], []
    plan = [("a", "a", users_a, ctr_a), ("b", "b", users_b, ctr_b), ("b", "fallback", fallback, ctr_a)]
    user = 0
    for arm, variant, n, ctr in plan:
        for _ in range(n):
            user += 1
            rid = f"r{user}"
            exposures.append((rid, user, arm, variant, "m", 10))
            for neighbour in np.flatnonzero(rng.random(10) < ctr):
                events.append((rid, int(neighbour), "click", variant))
    return pd.DataFrame(exposures, columns=EXPOSURE_COLUMNS), pd.DataFrame(events, columns=EVENT_COLUMNS)


def test_z_test_and_wilson_agree_with_scipy():
    z, p = report.two_proportion_z(230, 1000, 190, 1000)
    chi2, p_chi2, _, _ = stats.chi2_contingency([[230, 770], [190, 810]], correction=False)
    assert p == pytest.approx(p_chi2, rel=1e-9) and z * z == pytest.approx(chi2, rel=1e-9)
    low, high = report.wilson(37, 250)
    ci = stats.binomtest(37, 250).proportion_ci(0.95, method="wilson")
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-5)


def test_a_real_difference_is_found_and_the_better_arm_wins():
    exposures, events = simulated(3000, 3000, 0.20, 0.25, fallback=40)
    result = report.build(EXPERIMENT, exposures, events, alpha=0.01)
    by = {f.variant: f for f in result.variants}
    assert result.winner == "b" and by["b"].p_value < 0.01 and by["b"].lift == pytest.approx(0.25, abs=0.05)
    assert by["a"].impressions == 30_000 and by["fallback"].exposures == 40 and by["fallback"].p_value is None
    assert not result.sample_ratio["mismatch"] and not result.warnings
    text = report.markdown(result)
    assert "| b | `knn_collab_filtering_user_course_view` |" in text and "b (knn_collab_filtering_user_course_view) wins" in text


def test_no_difference_is_no_winner():
    exposures, events = simulated(2000, 2000, 0.2, 0.2)
    result = report.build(EXPERIMENT, exposures, events, alpha=0.01)
    assert result.winner is None and "no significant difference" in result.verdict


def test_sample_ratio_mismatch_fires_on_a_skewed_log_and_not_on_a_fair_one():
    skewed = report.build(EXPERIMENT, *simulated(5300, 4700, 0.2, 0.2), alpha=0.01)
    assert skewed.sample_ratio["mismatch"] and skewed.sample_ratio["p_value"] < 0.001
    assert skewed.warnings and skewed.warnings[0].startswith("SAMPLE RATIO MISMATCH")
    assert "**WARNING: SAMPLE RATIO MISMATCH" in report.markdown(skewed)
    fair = report.build(EXPERIMENT, *simulated(5030, 4970, 0.2, 0.2), alpha=0.01)
    assert not fair.sample_ratio["mismatch"]


def test_chart_is_written(tmp_path):
    result = report.build(EXPERIMENT, *simulated(300, 300, 0.2, 0.3), alpha=0.01)
    report.chart(result, tmp_path / "ctr.png")
    assert (tmp_path / "ctr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
