"""Per-user temporal hold-out: each user's latest items are the test (or validation) set.

The rule (the same for course views and interest tags):

* An item's date for a user is the *first* date the user touched it (first ``view_date`` of a
  course, first ``date_followed`` of a tag); later sessions of a course go with the course.
* A user with ``n`` distinct items holds out ``h = max(1, floor(fraction * n + 0.5))`` of them
  (20% rounded half up, at least one), capped at ``n - 1`` so one item always stays in training;
  a user with fewer than 2 distinct items keeps everything in training.
* The held-out items are the user's latest ``h`` by first date.  Dates are coarse (views are
  per day), so ties are broken by a seeded random key per (user, item), not by the item's name
  (course ids start with level words, an alphabetical tie-break would bias the held-out levels).
* Every row of a held-out (user, item) leaves the training table; all other rows, and all other
  tables, are unchanged.

The validation split applies the same rule to the training table, so tuning never sees the test
items.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.data.loader import Tables

HOLDOUT_FRACTION = 0.2


@dataclass(frozen=True)
class Task:
    """What is held out: the items of one table, ordered by one date column."""

    name: str
    table: str
    item_col: str
    date_col: str


TASKS: dict[str, Task] = {
    "courses": Task("courses", "user_course_views", "course_id", "view_date"),
    "interests": Task("interests", "user_interests", "interest_tag", "date_followed"),
    "assessments": Task("assessments", "user_assessment_scores", "assessment_tag", "user_assessment_date"),
}


@dataclass(frozen=True)
class Holdout:
    """``train`` keeps the rows of the table that are not held out; ``heldout`` lists the held-out
    (user_handle, item) pairs, one row each, with their first date."""

    train: pd.DataFrame
    heldout: pd.DataFrame


def holdout_count(n_items: np.ndarray, fraction: float = HOLDOUT_FRACTION) -> np.ndarray:
    """Items held out for users with ``n_items`` distinct items (see the module rule)."""
    n_items = np.asarray(n_items, dtype=np.int64)
    h = np.maximum(1, np.floor(fraction * n_items + 0.5).astype(np.int64))
    return np.where(n_items < 2, 0, np.minimum(h, n_items - 1))


def temporal_holdout(
    frame: pd.DataFrame,
    item_col: str,
    date_col: str,
    *,
    fraction: float = HOLDOUT_FRACTION,
    seed: int = 7,
    user_col: str = "user_handle",
) -> Holdout:
    """Hold out each user's latest ``fraction`` of distinct items (module docstring)."""
    pairs = (
        frame.groupby([user_col, item_col], sort=True, observed=True)[date_col]
        .min()
        .reset_index()
    )
    tiebreak = np.random.default_rng(seed).random(len(pairs))
    order = np.lexsort((tiebreak, pairs[date_col].to_numpy(), pairs[user_col].to_numpy()))
    pairs = pairs.iloc[order].reset_index(drop=True)
    users = pairs[user_col].to_numpy()
    rank = pairs.groupby(user_col, sort=False).cumcount().to_numpy()
    n_items = pairs.groupby(user_col, sort=False)[item_col].transform("size").to_numpy()
    held = rank >= n_items - holdout_count(n_items, fraction)
    heldout = pairs.loc[held, [user_col, item_col, date_col]].reset_index(drop=True)
    held_keys = pd.MultiIndex.from_arrays([users[held], pairs[item_col].to_numpy()[held]])
    row_keys = pd.MultiIndex.from_arrays([frame[user_col].to_numpy(), frame[item_col].to_numpy()])
    train = frame.loc[~row_keys.isin(held_keys)].reset_index(drop=True)
    return Holdout(train=train, heldout=heldout)


def split_tables(
    tables: Tables, task: Task, *, fraction: float = HOLDOUT_FRACTION, seed: int = 7
) -> tuple[Tables, pd.DataFrame]:
    """(tables with the task's table reduced to its training rows, the held-out pairs)."""
    result = temporal_holdout(getattr(tables, task.table), task.item_col, task.date_col, fraction=fraction, seed=seed)
    return dataclasses.replace(tables, **{task.table: result.train}), result.heldout
