from __future__ import annotations

import numpy as np

from recommender.evaluation.comparison import ENSEMBLE, versus_best


def test_the_best_other_model_is_the_bar_and_a_paired_difference_uses_per_user_differences():
    per_user = {
        ENSEMBLE: np.array([0.5, 0.6, 0.7, 0.8]),
        "weak": np.array([0.0, 0.0, 0.1, 0.0]),
        "strong": np.array([0.4, 0.5, 0.6, 0.7]),  # 0.1 below the ensemble for every user
    }
    c = versus_best(per_user, paired=True)
    assert c["best_single"] == "strong"
    assert abs(c["difference"] - 0.1) < 1e-12
    assert c["difference_error"] < 1e-12  # the same gap for every user: no noise at all
    assert c["at_least_as_good"] and c["verdict"].startswith("better")


def test_unpaired_lower_within_noise_and_clearly_worse_are_told_apart():
    rng = np.random.default_rng(0)
    noisy = rng.random(50)
    c = versus_best({ENSEMBLE: noisy - 0.01, "other": noisy}, paired=False)
    assert not c["at_least_as_good"] and c["verdict"].startswith("lower, but within")
    assert abs(c["difference_error"] - np.hypot(noisy.std(ddof=1), noisy.std(ddof=1)) / np.sqrt(50)) < 1e-12
    worse = versus_best({ENSEMBLE: np.zeros(50), "other": np.ones(50)}, paired=True)
    assert worse["verdict"].startswith("WORSE")


def test_no_comparison_without_the_ensemble_or_another_model():
    assert versus_best({"other": np.ones(3)}, paired=True) is None
    assert versus_best({ENSEMBLE: np.ones(3)}, paired=True) is None


def test_paired_p_values_are_small_for_a_consistent_gain_and_large_for_none():
    rng = np.random.default_rng(4)
    base = rng.random(400)
    gain = versus_best({ENSEMBLE: base + 0.02 + rng.normal(0, 0.01, 400), "other": base}, paired=True)
    assert gain["p_value_paired_t"] < 1e-6 and gain["p_value_wilcoxon"] < 1e-6
    none = versus_best({ENSEMBLE: base + rng.normal(0, 0.01, 400), "other": base}, paired=True)
    assert none["p_value_paired_t"] > 0.01 and none["p_value_wilcoxon"] > 0.01
    assert "p_value_paired_t" not in versus_best({ENSEMBLE: base, "other": base + 0.1}, paired=False)


def test_versus_a_baseline_is_clear_only_beyond_two_standard_errors():
    from recommender.evaluation.comparison import versus_baseline

    rng = np.random.default_rng(5)
    base = rng.random(200)
    out = versus_baseline({"base": base, "up": base + 0.05, "noise": base + rng.normal(0, 0.05, 200) - 0.001}, "base")
    assert set(out) == {"up", "noise"}
    assert out["up"]["clear"] and abs(out["up"]["difference"] - 0.05) < 1e-12
    assert not out["noise"]["clear"] and out["noise"]["difference_error"] > 0
