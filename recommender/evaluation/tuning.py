"""Compare each model's documented choices on a validation split carved out of the training split.

For each model, its own task (the one whose table it learns from: interest tags for TF-IDF,
course views for the two view models) is split as in the evaluation; the training part is split
again by the same rule, every configuration of a small grid is fitted on what remains and scored
on the validation items.  The best configuration on validation (ties go to the default) and the
default are then refitted on the full training split and scored on the test items, which are
never used to choose (:func:`select` is the choosing phase and reads no test item; a test holds it
to that with a split that refuses its held-out part).  A gain counts as *clear* when the mean paired per-user difference on
validation exceeds z standard errors, z Bonferroni-corrected for the size of the grid
(:func:`clear_z`).

Selection metric: NDCG@k for TF-IDF and k-NN (topic models: do the neighbours' items come next?);
level accuracy for the DNN, which is meant to capture skill level, not topic (does the level mix
of the neighbours' courses predict the level of the user's next courses?).  Planted precision,
when ground truth exists, is shown next to the grid for information and not used to choose.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from tqdm.auto import tqdm

from recommender.data.loader import Tables
from recommender.evaluation import metrics
from recommender.evaluation.report import describe_params
from recommender.evaluation.runner import DECIMALS, all_users, fit_neighbours
from recommender.evaluation.task_split import EvalConfig, TaskSplit
from recommender.evaluation.split import TASKS
from recommender.models.registry import MODEL_HANDLES, get_spec
from recommender.topk import Neighbours

log = logging.getLogger(__name__)

def _planted(neighbours: Neighbours, truth: pd.DataFrame | None, n: int) -> dict[str, float]:
    if truth is None:
        return {}
    return {f"{c}_precision_at_{n}": metrics.planted_precision(neighbours, truth[c]) for c in ("community", "skill")}


SplitFactory = Callable[..., TaskSplit]


def select(
    tables: Tables,
    truth: pd.DataFrame | None,
    config: EvalConfig,
    grids: dict[str, list[dict[str, Any]]] | None = None,
    *,
    split_factory: SplitFactory = TaskSplit,
) -> dict[str, dict[str, Any]]:
    """Phase one: every configuration of every model's grid fitted and scored on the validation
    split, and the best chosen there.  Nothing of the test split's held-out part is read: the
    validation split is carved out of the test split's *training* tables, and a split object that
    refuses every held-out attribute (``tests/evaluation/test_runner.py``) goes through this phase.

    ``split_factory(tables, task, users, config, seed_offset=...)`` builds the splits (``TaskSplit``)."""
    if grids is None:  # each model declares its own grid (SimilarityModel.tuning_grid)
        grids = {handle: get_spec(handle).load().tuning_grid for handle in MODEL_HANDLES}
    users = all_users(tables)
    splits: dict[str, tuple[TaskSplit, TaskSplit]] = {}
    chosen: dict[str, dict[str, Any]] = {}
    for handle, grid in grids.items():
        if handle not in config.models:
            continue
        task_name, metric_pattern = get_spec(handle).load().tuning_target
        selection = metric_pattern.format(k=config.k)
        if task_name not in splits:
            test = split_factory(tables, TASKS[task_name], users, config, seed_offset=0)
            validation = split_factory(test.train_tables, TASKS[task_name], users, config, seed_offset=1)
            splits[task_name] = (test, validation)
        test, validation = splits[task_name]
        entries, per_user = [], []
        for params in tqdm(grid, desc=f"tuning {handle}", unit="config", disable=not config.progress, leave=False):
            neighbours = fit_neighbours(
                handle, validation.train_tables, config, params, label=f"validation {params or 'default'}"
            )
            scores = validation.score(neighbours)
            entries.append({
                "params": params,
                "default": not params,
                "validation": _round({**scores.summary, **_planted(neighbours, truth, config.top_n)}),
                "validation_errors": _round(scores.errors),
            })
            per_user.append(scores.per_user[selection])
            log.info("%s %s: validation %s = %.4f", handle, params or "default", selection, scores.summary[selection])
        values = [e["validation"][selection] for e in entries]
        default_i = next(i for i, e in enumerate(entries) if e["default"])
        best_i = int(np.argmax(values))  # first maximum: the default (listed first) wins ties
        if values[best_i] <= values[default_i]:
            best_i = default_i
        chosen[handle] = {"task": task_name, "selection": selection, "test": test, "validation": validation,
                          "grid": grid, "entries": entries, "per_user": per_user,
                          "default_i": default_i, "best_i": best_i}
    return chosen


def tune(
    tables: Tables,
    truth: pd.DataFrame | None,
    config: EvalConfig,
    grids: dict[str, list[dict[str, Any]]] | None = None,
    *,
    split_factory: SplitFactory = TaskSplit,
) -> dict[str, Any]:
    """Grid per model on validation (:func:`select`, which reads no test item), then default vs
    best on validation and test."""
    out: dict[str, Any] = {
        "config": {"top_n": config.top_n, "k": config.k, "holdout_fraction": config.fraction, "seed": config.seed},
        "models": {},
    }
    for handle, c in select(tables, truth, config, grids, split_factory=split_factory).items():
        test, validation, grid, entries = c["test"], c["validation"], c["grid"], c["entries"]
        default_i, best_i, per_user, selection = c["default_i"], c["best_i"], c["per_user"], c["selection"]
        before_after: dict[str, Any] = {}
        test_per_user: dict[str, np.ndarray] = {}
        for which, i in (("default", default_i), ("best", best_i)):
            if which == "best" and best_i == default_i:
                before_after["best"] = before_after["default"]
                test_per_user["best"] = test_per_user["default"]
                continue
            neighbours = fit_neighbours(handle, test.train_tables, config, grid[i], label=f"test {which}")
            scores = test.score(neighbours)
            test_per_user[which] = scores.per_user[selection]
            before_after[which] = {
                "params": grid[i],
                "validation": entries[i]["validation"],
                "validation_errors": entries[i]["validation_errors"],
                "test": _round({**scores.summary, **_planted(neighbours, truth, config.top_n)}),
                "test_errors": _round(scores.errors),
            }
        diff = per_user[best_i] - per_user[default_i]
        z = clear_z(len(grid) - 1)
        margin = float(z * diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
        gain = {
            "validation": round(float(diff.mean()), DECIMALS),
            "margin": round(margin, DECIMALS),
            "z": round(z, 3),
            "clear": bool(diff.mean() > margin and best_i != default_i),
            "test": round(float((test_per_user["best"] - test_per_user["default"]).mean()), DECIMALS),
        }
        out["models"][handle] = {
            "task": c["task"],
            "selection_metric": selection,
            "validation_split": validation.describe(),
            "grid": entries,
            "before_after": before_after,
            "gain": gain,
            "recommendation": _recommendation(grid[best_i], gain, best_i == default_i),
        }
    return out


def clear_z(alternatives: int, alpha: float = 0.025) -> float:
    """Standard errors a gain must exceed to count as clear: one-sided ``alpha``, Bonferroni-corrected
    for picking the best of ``alternatives`` configurations (the maximum of several noisy gains is
    biased upwards), e.g. 2.64 for 6 alternatives."""
    return float(norm.ppf(1.0 - alpha / max(1, alternatives)))


def _recommendation(params: dict[str, Any], gain: dict[str, Any], is_default: bool) -> str:
    if is_default:
        return "Keep the defaults (no configuration beats them on validation)."
    change = describe_params(params)
    if not gain["clear"]:
        return f"Keep the defaults: {change} is better on validation, but not clearly."
    if gain["test"] <= 0:
        return f"Keep the defaults: {change} wins clearly on validation but not on test."
    return f"Change the default: {change} (clear gain on validation, confirmed on test)."


def _round(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), DECIMALS) for k, v in values.items()}
