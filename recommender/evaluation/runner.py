"""Fit every model on every hold-out split and collect all figures in one JSON-ready dict.

Per task (held-out course views, held-out interest tags) the models are fitted on the training
split (the task's table without the held-out rows, the other tables unchanged) and scored,
next to the two baselines drawn from the same training split.  A model whose tables the task
does not touch (TF-IDF for the course task, the view models for the interest task) is therefore
fitted on the *full* data: that fit is kept and is the one the planted-truth precision and the
agreement between models are computed on, so each model is fitted exactly twice.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender.data.loader import Tables, load_tables
from recommender.evaluation import baselines, metrics, references
from recommender.evaluation.comparison import versus_baseline, versus_best
from recommender.evaluation.metrics import standard_error
from recommender.evaluation.score_prediction import ScoreTask, evaluate_scores
from recommender.evaluation.split import TASKS
from recommender.evaluation.task_split import EvalConfig, TaskSplit
from recommender.models.registry import create_model, get_spec, tables_for
from recommender.topk import Neighbours, similar_users

log = logging.getLogger(__name__)

# The hold-out tasks read these; each model adds what it reads (``tables_for``).
TASK_TABLES = tuple(task.table for task in TASKS.values())
GROUND_TRUTH_FILE = "ground_truth.csv"
SCORE_TASK = "assessments"  # its split also gives the held-out assessment scores
DECIMALS = 6


def tables_needed(models: tuple[str, ...]) -> tuple[str, ...]:
    """What an evaluation of ``models`` must load: the tasks' tables plus every model's own."""
    return tuple(sorted(set(TASK_TABLES) | set(tables_for(models))))


def fit_neighbours(
    handle: str, tables: Tables, config: EvalConfig, params: dict[str, Any] | None = None, *, label: str = ""
) -> Neighbours:
    """Fit one model on ``tables`` and return every user's top-N neighbours."""
    params = config.params.get(handle, {}) if params is None else params
    started = time.perf_counter()
    model = create_model(handle, **params).fit(tables)
    fitted = time.perf_counter()
    neighbours = similar_users(model, config.top_n, search=config.search, progress=config.progress, desc=handle)
    log.info(
        "%s%s: fit %.1fs, top-%d search %.1fs, %s users answered",
        handle, f" ({label})" if label else "", fitted - started, config.top_n,
        time.perf_counter() - fitted, f"{neighbours.covered:,}",
    )
    return neighbours


def all_users(tables: Tables) -> np.ndarray:
    """Every user of the loaded tables (a table that was not loaded is empty)."""
    frames = (getattr(tables, task.table) for task in TASKS.values())
    return np.unique(np.concatenate([
        f["user_handle"].to_numpy(dtype=np.int64) for f in frames if "user_handle" in f.columns
    ]))


def load_truth(data_dir: Path | str) -> pd.DataFrame | None:
    path = Path(data_dir) / GROUND_TRUTH_FILE
    if not path.is_file():
        return None
    return pd.read_csv(path).set_index("user_handle").sort_index()


def evaluate(tables: Tables, truth: pd.DataFrame | None, config: EvalConfig) -> dict[str, Any]:
    """All figures: per task and system, planted truth, agreement and the popularity verdicts."""
    users = all_users(tables)
    full_fits: dict[str, Neighbours] = {}
    results: dict[str, Any] = {
        "config": _config_dict(config),
        "data": {
            "users": int(len(users)),
            "user_interests_rows": int(len(tables.user_interests)),
            "user_course_views_rows": int(len(tables.user_course_views)),
            "user_assessment_scores_rows": int(len(tables.user_assessment_scores)),
        },
        "tasks": {},
    }
    for task in TASKS.values():
        split = TaskSplit(tables, task, users, config)
        log.info("task %s: %s", task.name, split.describe())
        figures: dict[str, dict[str, float]] = {}
        errors: dict[str, dict[str, float]] = {}
        systems: dict[str, Neighbours] = {}
        ndcg: dict[str, np.ndarray] = {}  # per user, for the ensemble-vs-best comparison
        for handle in config.models:
            untouched = task.table not in get_spec(handle).tables
            if untouched and handle in full_fits:
                neighbours = full_fits[handle]
            else:
                neighbours = fit_neighbours(handle, split.train_tables, config, label=f"{task.name} split")
                if untouched:
                    full_fits[handle] = neighbours
            systems[handle] = neighbours
            scores = split.score(neighbours)
            figures[handle], errors[handle] = scores.summary, scores.errors
            ndcg[handle] = scores.per_user[f"ndcg_at_{config.k}"]
        baseline_ndcg: dict[str, np.ndarray] = {}
        for name, neighbours in split.baselines().items():
            systems[name] = neighbours
            scores = split.score(neighbours)
            figures[name], errors[name] = scores.summary, scores.errors
            baseline_ndcg[name] = scores.per_user[f"ndcg_at_{config.k}"]
        for name, recommended in references.item_recommenders(split, config.params).items():
            scores = split.score_items(recommended)
            figures[name], errors[name] = scores.summary, scores.errors
        results["tasks"][task.name] = {
            "split": split.describe(),
            "metrics": _rounded(figures),
            "standard_errors": _rounded(errors),
            "beats_most_active_users": _verdicts(figures, config.k, baselines.MOST_ACTIVE),
            "beats_random": _verdicts(figures, config.k, baselines.RANDOM),
            # paired per user: above the most active users by more than two standard errors?
            "versus_most_active_users": {
                name: _rounded_comparison(c) for name, c in versus_baseline(
                    {**ndcg, baselines.MOST_ACTIVE: baseline_ndcg[baselines.MOST_ACTIVE]}, baselines.MOST_ACTIVE).items()},
            "ensemble_vs_best": _rounded_comparison(versus_best(ndcg, paired=True)),
        }
        if task.name == SCORE_TASK:  # the same fits, judged on the held-out scores (score_prediction)
            results["assessment_scores"] = _score_prediction(tables, split, users, systems)
    for handle in config.models:  # a model reading every task's table (the ensemble) has no untouched split
        if handle not in full_fits:
            full_fits[handle] = fit_neighbours(handle, tables, config, label="full data")
    results["planted"] = _planted(tables, truth, full_fits, users, config) if truth is not None else None
    results["agreement"] = _agreement(full_fits)
    return results


def _score_prediction(tables: Tables, split: TaskSplit, users: np.ndarray, systems: dict[str, Neighbours]) -> dict[str, Any]:
    task = ScoreTask.build(split.train_tables.user_assessment_scores, split.heldout_pairs,
                           tables.user_assessment_scores, users)
    figures = evaluate_scores(task, systems)
    return {**figures, "metrics": _rounded(figures["metrics"]), "standard_errors": _rounded(figures["standard_errors"])}


def _verdicts(figures: dict[str, dict[str, float]], k: int, baseline: str) -> dict[str, bool]:
    """A model beats a baseline when its NDCG@k is higher than the baseline's."""
    metric = f"ndcg_at_{k}"
    floor = figures[baseline][metric]
    others = baselines.BASELINES + references.REFERENCES
    return {name: bool(values[metric] > floor) for name, values in figures.items() if name not in others}


def _planted(
    tables: Tables, truth: pd.DataFrame, full_fits: dict[str, Neighbours], users: np.ndarray, config: EvalConfig
) -> dict[str, Any]:
    """Share of neighbours in the user's hidden community / of the same skill (full-data fits).

    The baselines here draw from all users; "most active" counts distinct tags plus distinct courses.
    """
    n = config.top_n
    tags = tables.user_interests.drop_duplicates(["user_handle", "interest_tag"])["user_handle"].value_counts()
    courses = tables.user_course_views.drop_duplicates(["user_handle", "course_id"])["user_handle"].value_counts()
    activity = tags.add(courses, fill_value=0).reindex(users, fill_value=0)
    systems = dict(full_fits)
    systems[baselines.RANDOM] = baselines.random_neighbours(users, users, n, config.seed)
    systems[baselines.MOST_ACTIVE] = baselines.most_active_neighbours(users, users, activity.to_numpy(), n)
    # Models cover different users (the assessment model ~31%, the ensemble the union): the
    # "same users" column compares them on the users every model answers for.
    answered = [nb.users[nb.similar[:, 0] >= 0] for name, nb in full_fits.items()]
    common = functools.reduce(np.intersect1d, answered) if answered else users
    figures, errors = {}, {}
    community: dict[str, np.ndarray] = {}
    community_same: dict[str, np.ndarray] = {}  # same users, same order: a paired comparison
    for name, neighbours in systems.items():
        per_user = {
            f"{column}_precision_at_{n}": metrics.planted_precision_per_user(neighbours, truth[column])
            for column in ("community", "skill")
        }
        per_user[f"community_precision_at_{n}_same_users"] = metrics.planted_precision_per_user(
            _restricted(neighbours, common), truth["community"])
        figures[name] = {m: float(v.mean()) if len(v) else 0.0 for m, v in per_user.items()}
        errors[name] = {m: standard_error(v) for m, v in per_user.items()}
        if name in full_fits:
            community[name] = per_user[f"community_precision_at_{n}"]
            community_same[name] = per_user[f"community_precision_at_{n}_same_users"]
    chance = {
        f"{column}_precision_at_{n}": metrics.chance_precision(truth[column]) for column in ("community", "skill")
    }
    return {"fit": "full data", "same_users": int(len(common)), "metrics": _rounded(figures), "standard_errors": _rounded(errors),
            "chance": _rounded({"chance": chance})["chance"],
            "ensemble_vs_best": {
                "community_all_users": _rounded_comparison(versus_best(community, paired=False)),
                "community_same_users": _rounded_comparison(versus_best(community_same, paired=True)),
            }}


def _restricted(neighbours: Neighbours, users: np.ndarray) -> Neighbours:
    keep = np.isin(neighbours.users, users)
    return Neighbours(neighbours.users[keep], neighbours.similar[keep], neighbours.scores[keep])


def _agreement(full_fits: dict[str, Neighbours]) -> dict[str, Any]:
    names = list(full_fits)
    pairs = [
        {"a": a, "b": b, "mean_jaccard": round(metrics.mean_jaccard(full_fits[a], full_fits[b]), DECIMALS)}
        for i, a in enumerate(names) for b in names[i + 1:]
    ]
    return {"fit": "full data", "users": "answered by both models", "pairs": pairs}


def _rounded_comparison(comparison: dict[str, Any] | None) -> dict[str, Any] | None:
    if comparison is None:
        return None
    return {k: (float(f"{v:.3g}") if k.startswith("p_value") else round(v, DECIMALS)) if isinstance(v, float) else v
            for k, v in comparison.items()}


def _rounded(figures: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {name: {m: round(float(v), DECIMALS) for m, v in values.items()} for name, values in figures.items()}


def _config_dict(config: EvalConfig) -> dict[str, Any]:
    return {
        "top_n": config.top_n,
        "k": config.k,
        "holdout_fraction": config.fraction,
        "seed": config.seed,
        "models": {h: {**create_model(h).get_params(), **config.params.get(h, {})} for h in config.models},
    }


def evaluate_dir(data_dir: Path | str, config: EvalConfig) -> dict[str, Any]:
    """Load the tables the tasks and models need (and ground_truth.csv if present) and evaluate."""
    tables = load_tables(data_dir, tables_needed(config.models))
    return evaluate(tables, load_truth(data_dir), config)
