"""``ensemble_user_similarity``: the other models' neighbour lists of the same run, fused by rank.

Weighted reciprocal-rank fusion (Cormack, Clarke & Büttcher 2009): a candidate ``v`` of user
``u`` scores ``Σ_m w_m / (c + rank_m(u, v))`` over the models ``m`` that list ``v`` among ``u``'s
top N (rank 1 = first).  Ranks, not scores, are fused because the models' scores do not share a
scale (a TF-IDF cosine of 0.3 is high, an ALS cosine of 0.3 is low).  The fused score is divided
by its maximum ``Σ_m w_m / (c + 1)``, so 1.0 means "every model ranks this user first".

No refit: the generator hands the lists it already computed (:meth:`combine`); :meth:`fit`
fits the component models itself only when the ensemble runs alone (tests, evaluation).  A
model with weight 0 is left out.  Every user any component answers for gets an answer.
The weights were chosen on the validation split (``make evaluate EVAL_ARGS=--tune``).

Each neighbour's reasons are the models that list it, with their share of its fused score.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Self

import numpy as np
from scipy import sparse

from recommender.data.loader import Tables
from recommender.models.base import NotFittedError, SimilarityModel
from recommender.reasons import Explanations, agreeing_models
from recommender.topk import SCORE_DECIMALS, Neighbours

if TYPE_CHECKING:
    from recommender.search.options import SearchOptions

DEFAULT_WEIGHTS: dict[str, float] = {
    "tfidf_user_interest": 1.0,
    "knn_collab_filtering_user_course_view": 1.0,
    "als_collab_filtering_user_course_view": 2.0,
    "knn_collab_filtering_user_assessment_score": 0.5,
    "dnn_collab_filtering_user_course_level": 0.0,
}


def _with(**changes: float) -> dict[str, float]:
    return {**DEFAULT_WEIGHTS, **changes}


class EnsembleUserSimilarity(SimilarityModel):
    # ALS is the strongest single model on both course NDCG and community precision; with weight 2
    # its list leads and the others re-rank and fill in (and answer for users without views).
    tuning_grid = [
        {},
        {"weights": _with(als_collab_filtering_user_course_view=1.0)},
        {"weights": _with(als_collab_filtering_user_course_view=3.0)},
        {"weights": _with(tfidf_user_interest=0.0)},
        {"weights": _with(knn_collab_filtering_user_course_view=0.0)},
        {"weights": _with(knn_collab_filtering_user_assessment_score=0.0)},
        {"c": 10.0},
    ]
    tuning_target = ("courses", "ndcg_at_{k}")

    def __init__(self, weights: Mapping[str, float] | None = None, c: float = 60.0) -> None:
        super().__init__()
        weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValueError("ensemble weights must be >= 0 with at least one > 0")
        if c < 0:
            raise ValueError("c must be >= 0")
        self._keep_params({"weights": weights, "c": c})
        self.neighbours_: Neighbours | None = None
        self.contributions_: np.ndarray | None = None

    @property
    def components(self) -> tuple[str, ...]:
        """The models the ensemble fuses (weight > 0), in the weights' order."""
        return tuple(handle for handle, weight in self.weights.items() if weight > 0)

    def fit(self, tables: Tables) -> Self:
        """Fit every component on ``tables`` and fuse their top-N lists (the standalone path)."""
        from recommender.models.registry import create_model

        self._standalone = {handle: create_model(handle).fit(tables) for handle in self.components}
        return self

    def similar_users(self, n: int = 10, *, block_mb: int = 256, progress: bool = False,
                      search: SearchOptions | None = None) -> Neighbours:
        if self.neighbours_ is None or self.neighbours_.similar.shape[1] != n:
            standalone = getattr(self, "_standalone", None)
            if standalone is None:
                raise NotFittedError("EnsembleUserSimilarity: call fit() or combine() first")
            lists = {h: m.similar_users(n, block_mb=block_mb, progress=progress, search=search)
                     for h, m in standalone.items()}
            self.combine(lists, n)
        return self.neighbours_

    def combine(self, lists: Mapping[str, Neighbours], n: int | None = None) -> Neighbours:
        """Fuse the components' lists (missing components are skipped) into every user's top ``n``."""
        used = [h for h in self.components if h in lists]
        if not used:
            raise ValueError(f"none of the ensemble's models ({', '.join(self.components)}) was computed in this run")
        n = n or max(lists[h].similar.shape[1] for h in used)
        users = np.unique(np.concatenate([lists[h].users[lists[h].similar[:, 0] >= 0] for h in used]))
        rows, cols, values, model_ids = [], [], [], []
        for i, handle in enumerate(used):
            answer = lists[handle]
            valid = answer.similar >= 0
            row_of = np.searchsorted(users, answer.users)
            rank = np.broadcast_to(np.arange(1, answer.similar.shape[1] + 1), answer.similar.shape)
            rows.append(np.broadcast_to(row_of[:, None], answer.similar.shape)[valid])
            cols.append(answer.similar[valid])
            values.append(self.weights[handle] / (self.c + rank[valid]))
            model_ids.append(np.full(int(valid.sum()), i))
        row, col = np.concatenate(rows), np.concatenate(cols)
        value, model_id = np.concatenate(values), np.concatenate(model_ids)
        best = sum(self.weights[h] for h in used) / (self.c + 1.0)
        # One entry per (user, candidate): fused score; a bit mask of the models that list it.
        pair = np.lexsort((col, row))
        row, col, value, model_id = row[pair], col[pair], value[pair], model_id[pair]
        first = np.r_[True, (row[1:] != row[:-1]) | (col[1:] != col[:-1])]
        start = np.flatnonzero(first)
        fused = np.round(np.add.reduceat(value, start) / best, SCORE_DECIMALS)
        shares = np.zeros((len(start), len(used)))  # each model's part of the fused score, per pair
        shares[np.cumsum(first) - 1, model_id] = value / best
        row, col = row[start], col[start]
        order = np.lexsort((col, -fused, row))  # best first, ties by user_handle
        row, col, fused, shares = row[order], col[order], fused[order], shares[order]
        rank = np.arange(len(row)) - np.searchsorted(row, row)
        keep = rank < n
        similar = np.full((len(users), n), -1, dtype=np.int64)
        scores = np.full((len(users), n), np.nan, dtype=np.float32)
        contributions = np.zeros((len(users), n, len(used)))
        similar[row[keep], rank[keep]] = col[keep]
        scores[row[keep], rank[keep]] = fused[keep]
        contributions[row[keep], rank[keep]] = shares[keep]
        self.used_ = tuple(used)
        self.users_ = users
        self.contributions_ = contributions  # [i, r, m]: model used_[m]'s part of neighbour r's score
        self.neighbours_ = Neighbours(users, similar, scores)
        return self.neighbours_

    def explain(self, neighbours: Neighbours) -> Explanations:
        """The models that list the neighbour, by their share of the fused score."""
        return agreeing_models(self.contributions_, self.used_)

    def user_vectors(self):
        raise NotImplementedError("the ensemble fuses ranked lists; it has no user vectors")
