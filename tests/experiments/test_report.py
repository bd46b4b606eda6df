"""The report's statistics (scipy's) against the textbook formulas, and the sample-ratio check on skewed logs."""

from __future__ import annotations

import math

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


def textbook_z(x1: int, n1: int, x2: int, n2: int) -> float:
    """Pooled two-proportion z statistic, written out."""
    pooled = (x1 + x2) / (n1 + n2)
    return (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))


def textbook_wilson(x: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval, written out."""
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(230, 1000, 190, 1000), (12, 400, 31, 650), (5, 90, 0, 80)])
def test_z_test_agrees_with_the_textbook_formula(x1: int, n1: int, x2: int, n2: int):
    z, p = report.two_proportion_z(x1, n1, x2, n2)
    expected = textbook_z(x1, n1, x2, n2)
    assert z == pytest.approx(expected, rel=1e-9)  # the sign too: positive when the first proportion is higher
    assert p == pytest.approx(2 * stats.norm.sf(abs(expected)), rel=1e-9)
    assert report.two_proportion_z(x2, n2, x1, n1)[0] == pytest.approx(-expected, rel=1e-9)


def test_z_test_without_variance_or_trials():
    assert report.two_proportion_z(0, 100, 0, 50) == (0.0, 1.0)
    assert report.two_proportion_z(100, 100, 50, 50) == (0.0, 1.0)
    assert all(math.isnan(v) for v in report.two_proportion_z(1, 0, 1, 10))


@pytest.mark.parametrize(("x", "n"), [(37, 250), (0, 40), (40, 40), (1, 3)])
def test_wilson_agrees_with_the_textbook_formula(x: int, n: int):
    assert report.wilson(x, n) == pytest.approx(textbook_wilson(x, n), rel=1e-5, abs=1e-12)
    assert all(math.isnan(v) for v in report.wilson(0, 0))


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
