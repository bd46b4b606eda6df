"""Is the ensemble at least as good as the best single model?  One explicit answer per metric.

The bar is "≥ the best single model, measured in the same run".  The best single model is
the one with the highest mean on that metric among the other models (baselines and references
excluded).  The difference is paired when both are scored on the same users (a per-user
difference, whose standard error is much smaller than either figure's: the users' own variance
cancels) and unpaired otherwise (the ensemble answers more users than any one model, so "all
users each model answers" are different users); its standard error is given either way, and the
verdict says whether the difference is outside two standard errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
    return {
        "candidate": candidate, "best_single": best,
        "candidate_value": float(a.mean()), "candidate_error": standard_error(a),
        "best_value": float(b.mean()), "best_error": standard_error(b),
        "difference": delta, "difference_error": error, "paired": paired,
        "at_least_as_good": bool(delta >= 0), "verdict": verdict,
    }
