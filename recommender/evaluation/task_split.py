"""One hold-out split of one task, what every system is scored against, and the evaluation's settings.

Its own module so that what scores on a split (the runner, the tuning, the item recommenders of
``references.py``) imports it, and none of them imports another for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from recommender.data.loader import Tables
from recommender.data.schema import LEVELS
from recommender.evaluation import baselines, metrics
from recommender.evaluation.metrics import standard_error
from recommender.evaluation.recommend import Interactions, index_of, neighbour_weights, recommend
from recommender.evaluation.split import HOLDOUT_FRACTION, Task, split_tables
from recommender.models.registry import MODEL_HANDLES
from recommender.search.options import SearchOptions
from recommender.topk import Neighbours


@dataclass(frozen=True)
class EvalConfig:
    top_n: int = 10  # neighbours per user
    k: int = 10  # recommended items per user
    fraction: float = HOLDOUT_FRACTION
    seed: int = 7  # hold-out tie-breaks and the random baseline
    models: tuple[str, ...] = MODEL_HANDLES
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-model overrides
    search: SearchOptions = SearchOptions()  # the generator's default search (block size, ...)
    progress: bool = False


@dataclass(frozen=True)
class Scores:
    per_user: dict[str, np.ndarray]  # one value per evaluated user, in eval_users order
    summary: dict[str, float]

    @property
    def errors(self) -> dict[str, float]:
        """Standard error of each per-user mean: "better" must be outside the noise."""
        return {name: standard_error(values) for name, values in self.per_user.items()}


class TaskSplit:
    """One hold-out of one task: the training tables, and what every model is scored against."""

    def __init__(self, tables: Tables, task: Task, users: np.ndarray, config: EvalConfig, *, seed_offset: int = 0):
        self.task, self.config, self.users = task, config, users
        self.train_tables, heldout = split_tables(
            tables, task, fraction=config.fraction, seed=config.seed + seed_offset
        )
        full = getattr(tables, task.table)
        self.items = np.unique(full[task.item_col].to_numpy().astype(str))
        train_frame = getattr(self.train_tables, task.table)
        self.train = Interactions.build(
            users, self.items, train_frame["user_handle"].to_numpy(), train_frame[task.item_col].to_numpy().astype(str)
        )
        self.heldout = Interactions.build(
            users, self.items, heldout["user_handle"].to_numpy(), heldout[task.item_col].to_numpy().astype(str)
        )
        self.eval_rows = np.flatnonzero(np.diff(self.heldout.matrix.indptr) > 0)
        self.eval_users = users[self.eval_rows]
        self.relevant = self.heldout.matrix[self.eval_rows]
        self.seen = self.train.matrix[self.eval_rows]
        self.level_onehot = _item_levels(full, task, self.items)
        self.heldout_pairs = heldout

    def describe(self) -> dict[str, int]:
        train_rows = self.train.matrix.nnz
        return {
            "items": int(len(self.items)),
            "users_with_training_items": int((np.diff(self.train.matrix.indptr) > 0).sum()),
            "training_user_items": int(train_rows),
            "heldout_user_items": int(len(self.heldout_pairs)),
            "evaluated_users": int(len(self.eval_users)),
        }

    @cached_property
    def level_mix(self) -> np.ndarray | None:
        if self.level_onehot is None:
            return None
        counts = np.asarray((self.train.matrix @ self.level_onehot).todense())
        totals = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    def score(self, neighbours: Neighbours) -> Scores:
        weights = neighbour_weights(neighbours, self.users, self.eval_users)
        recommended = recommend(weights, self.train.matrix, self.seen, self.config.k)
        scores = self.score_items(recommended)
        scores.summary["user_coverage"] = metrics.user_coverage(neighbours, self.eval_users)
        if self.level_mix is not None:
            heldout_levels = np.asarray((self.relevant @ self.level_onehot).todense())
            scores.per_user["level_accuracy"] = metrics.level_accuracy(weights, self.level_mix, heldout_levels)
            scores.summary["level_accuracy"] = float(scores.per_user["level_accuracy"].mean())
        return scores

    def score_items(self, recommended: np.ndarray) -> Scores:
        """Ranking metrics of item lists (evaluated users x k), from neighbours or an item recommender."""
        k = self.config.k
        per_user = metrics.ranking_metrics(recommended, self.relevant)
        summary = {f"{name}_at_{k}": float(values.mean()) for name, values in per_user.items()}
        per_user = {f"{name}_at_{k}": values for name, values in per_user.items()}
        summary["catalogue_coverage"] = metrics.catalogue_coverage(recommended, len(self.items))
        return Scores(per_user, summary)

    def baselines(self) -> dict[str, Neighbours]:
        activity = np.diff(self.train.matrix.indptr)
        pool = self.users[activity > 0]
        n = self.config.top_n
        return {
            baselines.RANDOM: baselines.random_neighbours(self.eval_users, pool, n, self.config.seed),
            baselines.MOST_ACTIVE: baselines.most_active_neighbours(self.eval_users, self.users, activity, n),
        }



def _item_levels(full: pd.DataFrame, task: Task, items: np.ndarray) -> sparse.csr_matrix | None:
    """items x levels one-hot (each course's first listed level), or None when there are no levels."""
    if "level" not in full.columns:
        return None
    first = full.drop_duplicates(task.item_col)
    level_code = pd.Categorical(first["level"], categories=list(LEVELS)).codes
    rows = index_of(items, first[task.item_col].to_numpy().astype(str))
    ok = level_code >= 0
    return sparse.csr_matrix(
        (np.ones(int(ok.sum())), (rows[ok], level_code[ok])), shape=(len(items), len(LEVELS))
    )
