"""Is the ensemble at least as good as the best single model?  One explicit answer per metric.

The bar is "≥ the best single model, measured in the same run".  The best single model is
the one with the highest mean on that metric among the other models (baselines and references
excluded).  The difference is paired when both are scored on the same users (a per-user
difference, whose standard error is much smaller than either figure's: the users' own variance
cancels) and unpaired otherwise (the ensemble answers more users than any one model, so "all
users each model answers" are different users); its standard error is given either way, and the
verdict says whether the difference is outside two standard errors.  A paired comparison also
gives the one-sided p-values (the candidate is better) of scipy's paired t-test and Wilcoxon
signed-rank test on the per-user values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from recommender.evaluation.metrics import standard_error

ENSEMBLE = "ensemble_user_similarity"
Z = 2.0  # standard errors a difference must exceed to be "clear"


def versus_best(per_user: dict[str, np.ndarray], candidate: str = ENSEMBLE, *, paired: bool) -> dict[str, Any] | None:
    """Compare ``candidate`` with the best other system of ``per_user`` (name -> per-user values)."""
    others = {name: values for name, values in per_user.items() if name != candidate and len(values)}
    if candidate not in per_user or not others:
        return None
    best = max(others, key=lambda name: float(others[name].mean()))
    a, b = per_user[candidate], others[best]
    if paired:
        diff = a - b
        error = standard_error(diff)
    else:
        diff = np.array([a.mean() - b.mean()])
        error = float(np.hypot(standard_error(a), standard_error(b)))
    delta = float(diff.mean())
    if delta > Z * error:
        verdict = "better (outside two standard errors)"
    elif delta >= 0:
        verdict = "at least as good (difference within two standard errors)"
    elif delta >= -Z * error:
        verdict = "lower, but within two standard errors"
    else:
        verdict = "WORSE (outside two standard errors)"
    out = {
        "candidate": candidate, "best_single": best,
        "candidate_value": float(a.mean()), "candidate_error": standard_error(a),
        "best_value": float(b.mean()), "best_error": standard_error(b),
        "difference": delta, "difference_error": error, "paired": paired,
        "at_least_as_good": bool(delta >= 0), "verdict": verdict,
    }
    if paired:
        out.update(paired_tests(a, b))
    return out


def paired_tests(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """One-sided p-values that ``a`` is above ``b``, user by user: paired t-test and Wilcoxon
    signed-rank (zero differences dropped, as scipy's default); 1.0 when there is nothing to test."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(diff) < 2 or not diff.any():
        return {"p_value_paired_t": 1.0, "p_value_wilcoxon": 1.0}
    t = stats.ttest_rel(a, b, alternative="greater").pvalue if diff.std() > 0 else float(diff.mean() <= 0)
    w = stats.wilcoxon(diff, alternative="greater").pvalue
    return {"p_value_paired_t": float(t), "p_value_wilcoxon": float(w)}


def versus_baseline(per_user: dict[str, np.ndarray], baseline: str) -> dict[str, dict[str, Any]]:
    """Each system against ``baseline`` on the same users: paired difference ± its standard error,
    and whether it is above by more than two standard errors (``clear``)."""
    base = per_user[baseline]
    out = {}
    for name, values in per_user.items():
        if name == baseline:
            continue
        diff = values - base
        error = standard_error(diff)
        out[name] = {"difference": float(diff.mean()), "difference_error": error,
                     "clear": bool(diff.mean() > Z * error)}
    return out
