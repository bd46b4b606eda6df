"""Held-out assessment *scores*: do a user's neighbours predict how well the user does on an assessment?

The assessment model claims "these users took the same assessments *at a similar level*".  The
held-out assessment-tag task cannot judge that claim (which tag comes next says nothing about the
score), so this task asks the model's own question.  For every held-out (user, assessment tag):

* target: where the user's (mean) held-out score falls among the training takers of that tag, as a
  mid-rank percentile in (0, 1) (``(#below + #equal / 2) / #takers``): the per-tag normalisation
  the model itself uses, so that a hard assessment's 150 and an easy one's 250 compare;
* prediction: the similarity-weighted mean of the training percentiles of the user's neighbours
  *who took that tag*, ``Σ s_uv·p_vt / Σ s_uv`` over them; when none did, the per-tag mean of the
  training percentiles (0.5 by construction): the prediction then counts, and *coverage* says how
  often the neighbours could answer at all.

Figures: MAE and RMSE over all held-out pairs (± one standard error over pairs; RMSE's by the
delta method), MAE over the covered pairs only, and coverage.  References next to the models and
the random / most-active neighbours: ``tag_mean`` (always the per-tag mean: what knowing nothing
about the user gives) and ``user_mean`` (the user's own mean training percentile over their other
assessments, the tag mean when they have none: what a user's own history says, no neighbours).
Everything is sparse products over (evaluated users × users) neighbour weights and (users × tags)
percentiles: no users × users matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from recommender.evaluation.metrics import standard_error
from recommender.evaluation.recommend import index_of, neighbour_weights
from recommender.topk import Neighbours

TAG_MEAN = "tag_mean"
USER_MEAN = "user_mean"
REFERENCES: tuple[str, ...] = (TAG_MEAN, USER_MEAN)
USER, TAG, SCORE = "user_handle", "assessment_tag", "user_assessment_score"


@dataclass(frozen=True)
class ScoreTask:
    """The held-out (user, tag) pairs that can be normalised, and the training percentiles."""

    users: np.ndarray  # every user handle (the neighbour index), ascending
    pair_users: np.ndarray  # (P,) user handle of each held-out pair
    pair_tags: np.ndarray  # (P,) tag index
    target: np.ndarray  # (P,) percentile of the held-out score among the tag's training takers
    percentiles: sparse.csr_matrix  # users × tags: training percentile (0 where not taken)
    taken: sparse.csr_matrix  # users × tags: 1 where taken in training
    tag_mean: np.ndarray  # (tags,) mean training percentile

    @classmethod
    def build(cls, train: pd.DataFrame, heldout: pd.DataFrame, full: pd.DataFrame, users: np.ndarray) -> ScoreTask:
        """``heldout``: the (user, tag) pairs held out; their scores are read from ``full``."""
        train_mean = _mean_scores(train)
        tags = np.unique(train_mean[TAG].to_numpy().astype(str))
        tag_idx = index_of(tags, train_mean[TAG].to_numpy().astype(str))
        by_tag = train_mean.groupby(TAG, sort=False, observed=True)[SCORE]
        position = (by_tag.rank(method="average").to_numpy() - 0.5) / by_tag.transform("size").to_numpy()
        rows = index_of(users, train_mean[USER].to_numpy(dtype=np.int64))
        shape = (len(users), len(tags))
        percentiles = sparse.csr_matrix((position, (rows, tag_idx)), shape=shape)
        taken = sparse.csr_matrix((np.ones(len(rows)), (rows, tag_idx)), shape=shape)
        tag_mean = np.bincount(tag_idx, weights=position, minlength=len(tags)) / np.maximum(
            np.bincount(tag_idx, minlength=len(tags)), 1)
        held = _mean_scores(full).merge(heldout[[USER, TAG]].astype({TAG: str}), on=[USER, TAG])
        held_tags = held[TAG].to_numpy().astype(str)
        known = np.isin(held_tags, tags)  # a tag nobody took in training cannot be normalised
        held = held[known]
        pair_tags = index_of(tags, held_tags[known])
        target = _percentile_among(train_mean, tags, pair_tags, held[SCORE].to_numpy())
        return cls(users, held[USER].to_numpy(dtype=np.int64), pair_tags, target, percentiles, taken, tag_mean)

    def predict(self, neighbours: Neighbours) -> tuple[np.ndarray, np.ndarray]:
        """(prediction, covered) per pair: the neighbours' weighted mean percentile on the pair's tag."""
        rows_for, pair_row = np.unique(self.pair_users, return_inverse=True)
        weights = neighbour_weights(neighbours, self.users, rows_for)
        numerator = _pick(weights @ self.percentiles, pair_row, self.pair_tags)
        denominator = _pick(weights @ self.taken, pair_row, self.pair_tags)
        covered = denominator > 0
        fallback = self.tag_mean[self.pair_tags]
        prediction = np.divide(numerator, denominator, out=fallback.copy(), where=covered)
        return prediction, covered

    def user_mean(self) -> np.ndarray:
        """Per pair: the user's own mean training percentile (tag mean when the user has none)."""
        rows = index_of(self.users, self.pair_users)
        count = np.asarray(self.taken[rows].sum(axis=1)).ravel()
        total = np.asarray(self.percentiles[rows].sum(axis=1)).ravel()
        return np.divide(total, count, out=self.tag_mean[self.pair_tags].copy(), where=count > 0)

    def score(self, prediction: np.ndarray, covered: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
        """(figures, standard errors): MAE, RMSE, MAE on covered pairs, coverage."""
        error = np.abs(prediction - self.target)
        squared = error**2
        rmse = float(np.sqrt(squared.mean())) if len(error) else 0.0
        figures = {
            "mae": float(error.mean()) if len(error) else 0.0,
            "rmse": rmse,
            "mae_covered": float(error[covered].mean()) if covered.any() else 0.0,
            "coverage": float(covered.mean()) if len(covered) else 0.0,
        }
        errors = {
            "mae": standard_error(error),
            "rmse": standard_error(squared) / (2 * rmse) if rmse > 0 else 0.0,
            "mae_covered": standard_error(error[covered]),
            "coverage": standard_error(covered.astype(np.float64)),
        }
        if not covered.any():  # no neighbour took any held-out tag: no MAE over covered pairs
            del figures["mae_covered"], errors["mae_covered"]
        return figures, errors

    def describe(self) -> dict[str, int]:
        return {"heldout_pairs": int(len(self.target)), "evaluated_users": int(len(np.unique(self.pair_users))),
                "tags": int(len(self.tag_mean))}


def evaluate_scores(task: ScoreTask, systems: dict[str, Neighbours]) -> dict[str, object]:
    """Figures of every system (models and neighbour baselines) and of the two references."""
    figures, errors = {}, {}
    for name, neighbours in systems.items():
        figures[name], errors[name] = task.score(*task.predict(neighbours))
    everywhere = np.ones(len(task.target), dtype=bool)
    for name, prediction in ((TAG_MEAN, task.tag_mean[task.pair_tags]), (USER_MEAN, task.user_mean())):
        figures[name], errors[name] = task.score(prediction, everywhere)
        del figures[name]["coverage"], errors[name]["coverage"], figures[name]["mae_covered"], errors[name]["mae_covered"]
    return {"split": task.describe(), "metrics": figures, "standard_errors": errors}


def _mean_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, tag): the mean score of the user's attempts (as the model averages them)."""
    out = frame.groupby([USER, TAG], sort=True, observed=True)[SCORE].mean().reset_index()
    out[TAG] = out[TAG].astype(str)
    return out


def _percentile_among(train_mean: pd.DataFrame, tags: np.ndarray, pair_tags: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mid-rank position of each score among its tag's training scores: (#below + #equal/2) / #takers."""
    tag_of_row = index_of(tags, train_mean[TAG].to_numpy().astype(str))
    train_scores = train_mean[SCORE].to_numpy(dtype=np.float64)
    order = np.lexsort((train_scores, tag_of_row))
    span = 2.0 * max(np.abs(train_scores).max(initial=0.0), np.abs(scores).max(initial=0.0)) + 1.0
    key = tag_of_row[order] * span + train_scores[order]  # sorted by (tag, score)
    query = pair_tags * span + scores
    start = np.searchsorted(tag_of_row[order], pair_tags, side="left")
    below = np.searchsorted(key, query, side="left") - start
    equal = np.searchsorted(key, query, side="right") - start - below
    takers = np.bincount(tag_of_row, minlength=len(tags))[pair_tags]
    return (below + equal / 2.0) / takers


def _pick(matrix: sparse.spmatrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.asarray(sparse.csr_matrix(matrix)[rows, cols]).ravel()
