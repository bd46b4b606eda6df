"""Item recommenders that anchor the figures: what a plain item recommender reaches on the same split.

The similar-users models are scored by the items their neighbours bring; these rows recommend
items directly, so they say where "good" is, not what a similar-users model must do:

* ``item_pop``: each user's ``k`` most popular training items they have not seen (ties by item
  index): the standard popularity baseline of item recommendation, much harder to beat than the
  most active users as everyone's neighbours.
* ``als_direct_items`` (course task only): the ALS model's own item scores (user factor · course
  factor), unseen courses only: a matrix-factorisation course recommender on the same training rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from recommender.evaluation.recommend import index_of
from recommender.evaluation.task_split import TaskSplit
from recommender.models.registry import create_model

ITEM_POP = "item_pop"
ALS_DIRECT = "als_direct_items"
REFERENCES: tuple[str, ...] = (ITEM_POP, ALS_DIRECT)
ALS_HANDLE = "als_collab_filtering_user_course_view"


def item_pop(split: TaskSplit) -> np.ndarray:
    """(evaluated users, k) item indices: the most popular unseen training items (ties by item index)."""
    popularity = np.asarray(split.train.matrix.sum(axis=0)).ravel()
    ranked = np.lexsort((np.arange(len(popularity)), -popularity))
    ranked = ranked[popularity[ranked] > 0]
    return first_unseen(ranked, split.seen, split.config.k)


def first_unseen(ranked: np.ndarray, seen: sparse.csr_matrix, k: int) -> np.ndarray:
    """Per row of ``seen``, the first ``k`` items of the global ranking the row has not seen (-1 padded).

    A row can skip at most its own number of seen items, so the first ``k + max seen`` ranked items
    are enough candidates: memory is users x (k + max seen), never users x items.
    """
    seen = sparse.csr_matrix(seen)
    users, width = seen.shape
    depth = min(len(ranked), k + int(np.diff(seen.indptr).max(initial=0)))
    candidates = np.broadcast_to(ranked[:depth], (users, depth))
    seen_keys = np.repeat(np.arange(users, dtype=np.int64), np.diff(seen.indptr)) * width + seen.indices
    is_seen = np.isin(np.arange(users, dtype=np.int64)[:, None] * width + candidates, seen_keys)
    keep = np.argsort(is_seen, axis=1, kind="stable")[:, :k]  # unseen first, in ranking order
    chosen = np.where(np.take_along_axis(is_seen, keep, 1), -1, np.take_along_axis(candidates, keep, 1))
    out = np.full((users, k), -1, dtype=np.int64)
    out[:, : chosen.shape[1]] = chosen
    return out


def als_direct(split: TaskSplit, params: dict[str, Any] | None = None) -> np.ndarray:
    """(evaluated users, k) course indices from the ALS model's item scores; -1 for users it has no factors for."""
    model = create_model(ALS_HANDLE, **(params or {})).fit(split.train_tables)
    k = split.config.k
    out = np.full((len(split.eval_users), k), -1, dtype=np.int64)
    known = np.isin(split.eval_users, model.users_)
    rows = np.searchsorted(model.users_, split.eval_users[known])
    # the model's course columns -> the split's item index; the split's seen matrix -> the model's columns
    to_split = index_of(split.items, np.asarray(model.courses_).astype(str))
    seen = split.seen[np.flatnonzero(known)][:, to_split]
    out[known] = to_split[model.recommend_courses(rows, seen.tocsr(), k)]
    return out


def item_recommenders(split: TaskSplit, params: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """The reference rows that apply to ``split``'s task."""
    rows = {ITEM_POP: item_pop(split)}
    if split.task.name == "courses":
        rows[ALS_DIRECT] = als_direct(split, params.get(ALS_HANDLE))
    return rows
