"""Two reference "models" that any similarity model must beat, as ``Neighbours``.

* random_users: ``n`` distinct users drawn uniformly (seeded) from a pool, self excluded.
* most_active_users: the ``n`` most active users (most distinct training items; ties by handle)
  are everyone's neighbours, self excluded (the most active users get the next one instead).
  A weak bar: the items of a few heavy users, not the items most users take (that is ItemPop,
  :mod:`recommender.evaluation.references`).

Both give every neighbour the score 1, so the items they recommend are counted, not weighted.
"""

from __future__ import annotations

import numpy as np

from recommender.topk import Neighbours

RANDOM = "random_users"
MOST_ACTIVE = "most_active_users"
BASELINES: tuple[str, ...] = (RANDOM, MOST_ACTIVE)
_BLOCK = 512  # rows of random keys drawn at once; fixed, because the draws depend on it


def random_neighbours(users: np.ndarray, pool: np.ndarray, n: int, seed: int) -> Neighbours:
    """For each of ``users``, ``n`` distinct random users of ``pool`` other than itself."""
    users = np.asarray(users, dtype=np.int64)
    pool = np.unique(np.asarray(pool, dtype=np.int64))
    similar = np.full((len(users), n), -1, dtype=np.int64)
    rng = np.random.default_rng(seed)
    take = min(n, len(pool) - 1) if len(pool) else 0
    if take > 0:
        self_pos = np.searchsorted(pool, users)
        in_pool = (self_pos < len(pool)) & (pool[np.minimum(self_pos, len(pool) - 1)] == users)
        for start in range(0, len(users), _BLOCK):
            stop = min(start + _BLOCK, len(users))
            keys = rng.random((stop - start, len(pool)))
            rows = np.flatnonzero(in_pool[start:stop])
            keys[rows, self_pos[start:stop][rows]] = np.inf
            chosen = np.argpartition(keys, take - 1, axis=1)[:, :take]
            chosen = np.take_along_axis(chosen, np.argsort(np.take_along_axis(keys, chosen, 1), axis=1), 1)
            similar[start:stop, :take] = pool[chosen]
    return Neighbours(users, similar, _scores(similar))


def most_active_neighbours(users: np.ndarray, activity_users: np.ndarray, activity: np.ndarray, n: int) -> Neighbours:
    """The ``n`` users with the highest ``activity`` (ties by handle) for everyone, self excluded."""
    users = np.asarray(users, dtype=np.int64)
    activity_users = np.asarray(activity_users, dtype=np.int64)
    order = np.lexsort((activity_users, -np.asarray(activity, dtype=np.float64)))
    top = activity_users[order[: n + 1]]
    similar = np.full((len(users), n), -1, dtype=np.int64)
    if len(top):
        is_self = users[:, None] == top[None, :]
        # Keep the first n of the top n+1 that are not the user (a stable sort puts self last).
        keep = np.argsort(is_self, axis=1, kind="stable")[:, :n]
        chosen = np.where(np.take_along_axis(is_self, keep, 1), -1, top[keep])
        similar[:, : chosen.shape[1]] = chosen
    return Neighbours(users, similar, _scores(similar))


def _scores(similar: np.ndarray) -> np.ndarray:
    return np.where(similar >= 0, 1.0, np.nan).astype(np.float32)
