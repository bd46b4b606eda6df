"""``ensemble_user_similarity``: the other models' neighbour lists of the same run, fused.

Each component model lists every user's top ``depth`` candidates (50 by default, deeper than the
N it stores), so that a user two models both rank 20th is in the pool.  Two fusions:

* ``fusion="cosine"`` (default): every candidate in the pool is *re-scored* by every component,
  the cosine of the two users under that component's own fitted vectors (one row-wise product per
  (user, candidate) pair, in blocks: users × depth × models pairs, never users × users), and the
  fused score is ``Σ_m w_m·cos_m(u, v) / Σ_m w_m``.  A candidate ALS ranks 30th but whose interests
  are close (TF-IDF cosine 0.6) then beats one ALS ranks 9th whose interests are unrelated: the
  models' evidence is added up, not only their verdicts.  The weights carry the scale of each
  model's cosine (a TF-IDF cosine of 0.3 is high, an ALS cosine of 0.3 is low); they were chosen
  on the validation split.  Without the fitted models (``combine(lists)`` alone) a component's
  cosine is known only where it lists the candidate; elsewhere it counts 0.
* ``fusion="rrf"``: weighted reciprocal-rank fusion over the same lists (Cormack, Clarke &
  Büttcher 2009), ``Σ_m w_m / (c + rank_m(u, v))`` divided by its maximum ``Σ_m w_m / (c + 1)``.
  Kept for comparison: at depth 10 the lists barely overlap (Jaccard ≈ 0.01) and at depth 50 a
  rank says too little; on the validation split it did not beat ALS alone (docs/evaluation/tuning.md).

No refit: the generator hands the lists (and the fitted models) it already has (:meth:`combine`);
:meth:`fit` fits the components itself only when the ensemble runs alone (tests, evaluation).
A model with weight 0 is left out.  Every user any component answers for gets an answer.

Each neighbour's reasons are the models that support it, with their share of its fused score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, Self

import numba
import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize

from recommender.data.loader import Tables
from recommender.models.base import NotFittedError, SimilarityModel
from recommender.reasons import Explanations, agreeing_models
from recommender.search.pair_dots import pair_dots
from recommender.topk import SCORE_DECIMALS, Neighbours

if TYPE_CHECKING:
    from recommender.search.options import SearchOptions

Fusion = Literal["cosine", "rrf"]

DEFAULT_WEIGHTS: dict[str, float] = {
    "tfidf_user_interest": 1.0,
    "knn_collab_filtering_user_course_view": 0.0,
    "als_collab_filtering_user_course_view": 1.0,
    "knn_collab_filtering_user_assessment_score": 0.5,
    "dnn_collab_filtering_user_course_level": 0.0,
}
DEFAULT_DEPTH = 50
USER_BLOCK = 4096  # users fused at a time: bounds the (user, candidate) pairs held at once
#: The weights of the top-10 rank fusion this model replaced (ALS leads, the others re-rank and fill in).
RRF_WEIGHTS = {**DEFAULT_WEIGHTS, "knn_collab_filtering_user_course_view": 1.0, "als_collab_filtering_user_course_view": 2.0}


def _with(**changes: float) -> dict[str, float]:
    return {**DEFAULT_WEIGHTS, **changes}


def head(neighbours: Neighbours, n: int) -> Neighbours:
    """The first ``n`` neighbours of every user (what a component stores when it was searched deeper)."""
    if neighbours.similar.shape[1] <= n:
        return neighbours
    return replace(neighbours, similar=neighbours.similar[:, :n], scores=neighbours.scores[:, :n])


class EnsembleUserSimilarity(SimilarityModel):
    # Chosen on the validation split (docs/evaluation/tuning.md), one change at a time.
    tuning_grid = [
        {},
        {"weights": _with(tfidf_user_interest=0.5)},
        {"weights": _with(tfidf_user_interest=1.5)},
        {"weights": _with(knn_collab_filtering_user_course_view=0.25)},
        {"weights": _with(knn_collab_filtering_user_assessment_score=0.0)},
        {"weights": _with(knn_collab_filtering_user_assessment_score=0.25)},
        {"weights": _with(knn_collab_filtering_user_assessment_score=1.0)},
        {"depth": 20},
        {"depth": 100},
        {"fusion": "rrf", "weights": RRF_WEIGHTS},
        {"fusion": "rrf", "weights": RRF_WEIGHTS, "c": 10.0},
        {"fusion": "rrf", "weights": RRF_WEIGHTS, "depth": 10},  # the ensemble before deeper fusion
    ]
    tuning_target = ("courses", "ndcg_at_{k}")

    def __init__(self, weights: Mapping[str, float] | None = None, depth: int = DEFAULT_DEPTH,
                 fusion: Fusion = "cosine", c: float = 60.0) -> None:
        super().__init__()
        weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValueError("ensemble weights must be >= 0 with at least one > 0")
        if fusion not in ("cosine", "rrf"):
            raise ValueError(f"fusion must be cosine or rrf, not {fusion!r}")
        if c < 0:
            raise ValueError("c must be >= 0")
        if int(depth) < 1:
            raise ValueError("depth must be >= 1")
        self._keep_params({"weights": weights, "depth": int(depth), "fusion": fusion, "c": c})
        self.neighbours_: Neighbours | None = None
        self.contributions_: np.ndarray | None = None

    @property
    def components(self) -> tuple[str, ...]:
        """The models the ensemble fuses (weight > 0), in the weights' order."""
        return tuple(handle for handle, weight in self.weights.items() if weight > 0)

    def fit(self, tables: Tables) -> Self:
        """Fit every component on ``tables`` (the standalone path; the generator calls :meth:`combine`)."""
        from recommender.models.registry import create_model

        self._standalone = {handle: create_model(handle).fit(tables) for handle in self.components}
        return self

    def similar_users(self, n: int = 10, *, block_mb: int = 256, progress: bool = False,
                      search: SearchOptions | None = None) -> Neighbours:
        if self.neighbours_ is None or self.neighbours_.similar.shape[1] != n:
            standalone = getattr(self, "_standalone", None)
            if standalone is None:
                raise NotFittedError("EnsembleUserSimilarity: call fit() or combine() first")
            depth = max(n, self.depth)
            lists = {h: m.similar_users(depth, block_mb=block_mb, progress=progress, search=search)
                     for h, m in standalone.items()}
            self.combine(lists, n, models=standalone)
        return self.neighbours_

    def combine(self, lists: Mapping[str, Neighbours], n: int | None = None,
                models: Mapping[str, SimilarityModel] | None = None, *, release_models: bool = False) -> Neighbours:
        """Fuse the components' lists (their first ``depth``; missing components are skipped) into
        every user's top ``n``; ``models``, the fitted components, give the cosines of candidates a
        component does not list (``fusion="cosine"``).  Users are fused ``USER_BLOCK`` at a time, so
        memory is a block's users × depth × models, whatever the number of users.

        ``release_models``: the caller is done with the components (a run fuses last), so each
        forgets its vectors as soon as their normalised copy is made, rather than both being held
        through the fusion."""
        used = [h for h in self.components if h in lists]
        if not used:
            raise ValueError(f"none of the ensemble's models ({', '.join(self.components)}) was computed in this run")
        n = n or max(lists[h].similar.shape[1] for h in used)
        lists = {h: head(lists[h], self.depth) for h in used}
        users = np.unique(np.concatenate([lists[h].users[lists[h].similar[:, 0] >= 0] for h in used]))
        units = {}
        for h in used:
            if self.fusion == "cosine" and models and h in models:
                units[h] = unit_vectors(models[h])
                if release_models:
                    models[h].release()
        similar = np.full((len(users), n), -1, dtype=np.int64)
        scores = np.full((len(users), n), np.nan, dtype=np.float32)
        contributions = np.zeros((len(users), n, len(used)))
        for lo in range(0, len(users), USER_BLOCK):
            block = users[lo:lo + USER_BLOCK]
            row, col, parts = self._evidence(lists, used, block, units)
            fused = np.round(parts.sum(axis=1), SCORE_DECIMALS)
            best = np.full((len(block), n), -1, dtype=np.int64)  # [row, rank]: the pair, best first
            _top_pairs(np.searchsorted(row, np.arange(len(block) + 1)), fused, best)
            rows, rank = np.nonzero(best >= 0)
            pair = best[rows, rank]
            similar[rows + lo, rank], scores[rows + lo, rank], contributions[rows + lo, rank] = col[pair], fused[pair], parts[pair]
        self.used_ = tuple(used)
        self.users_ = users
        self.contributions_ = contributions  # [i, r, m]: model used_[m]'s part of neighbour r's score
        self.neighbours_ = Neighbours(users, similar, scores)
        return self.neighbours_

    def _evidence(self, lists: Mapping[str, Neighbours], used: list[str], block: np.ndarray,
                  units: Mapping[str, tuple[Any, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (row in ``block``, candidate) any component lists, once, and each model's part of its
        fused score (divided by the best possible total, so that the fused score is at most 1)."""
        rows, cols, listed = [], [], []
        for handle in used:
            answer = lists[handle]
            first = np.searchsorted(answer.users, block[0], side="left")
            last = np.searchsorted(answer.users, block[-1], side="right")
            similar = answer.similar[first:last]
            valid = similar >= 0
            rank = np.broadcast_to(np.arange(1, similar.shape[1] + 1), similar.shape)[valid]
            rows.append(np.broadcast_to(np.searchsorted(block, answer.users[first:last])[:, None], similar.shape)[valid])
            cols.append(similar[valid])
            weight = self.weights[handle]
            listed.append(weight / (self.c + rank) if self.fusion == "rrf" else weight * answer.scores[first:last][valid])
        row, col = np.concatenate(rows), np.concatenate(cols)
        if len(col) and col.min() >= 0 and col.max() < (1 << 62) // len(block):  # one integer key: one sort
            pair = np.argsort(row * (col.max() + 1) + col)
        else:
            pair = np.lexsort((col, row))
        first = np.r_[True, (row[pair][1:] != row[pair][:-1]) | (col[pair][1:] != col[pair][:-1])]
        pair_of = np.empty(len(row), dtype=np.int64)
        pair_of[pair] = np.cumsum(first) - 1
        row, col = row[pair][first], col[pair][first]
        parts = np.zeros((len(row), len(used)))  # [pair, model]: that model's weighted evidence
        offset = 0
        for i, (handle, evidence) in enumerate(zip(used, listed)):
            parts[pair_of[offset:offset + len(evidence)], i] = evidence
            offset += len(evidence)
            if handle in units:  # every candidate re-scored, not only those the model lists
                parts[:, i] = self.weights[handle] * pair_cosines(*units[handle], block[row], col)
        best = sum(self.weights[h] / (self.c + 1.0) if self.fusion == "rrf" else self.weights[h] for h in used)
        return row, col, parts / best

    def explain(self, neighbours: Neighbours) -> Explanations:
        """The models that support the neighbour, by their share of the fused score."""
        return agreeing_models(self.contributions_, self.used_)

    def user_vectors(self) -> Any:
        raise NotImplementedError("the ensemble fuses ranked lists; it has no user vectors")


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_pairs(starts, fused, best):  # pragma: no cover - compiled
    """``best[r]``: the pairs ``starts[r]:starts[r + 1]`` (one row's candidates, by user_handle) with the
    largest positive ``fused``, best first, ties by user_handle: an insertion into the row's top n,
    over both cores (sorting the block's pairs by row, score and handle took longer than the fusion)."""
    n = best.shape[1]
    for r in numba.prange(best.shape[0]):
        kept = 0
        for p in range(starts[r], starts[r + 1]):
            score = fused[p]
            if score <= 0 or (kept == n and score <= fused[best[r, n - 1]]):
                continue
            at = min(kept, n - 1)
            while at > 0 and score > fused[best[r, at - 1]]:  # an equal score keeps the lower handle first
                best[r, at] = best[r, at - 1]
                at -= 1
            best[r, at] = p
            kept = min(kept + 1, n)


def unit_vectors(model: SimilarityModel) -> tuple[np.ndarray | sparse.csr_matrix, RowLookup]:
    """(row-normalised vectors, their rows by handle) of a fitted model: made once, used for every block."""
    vectors, users = model.user_vectors()
    unit = normalize(sparse.csr_matrix(vectors, dtype=np.float64) if sparse.issparse(vectors)
                     else np.asarray(vectors, dtype=np.float64))
    return unit, RowLookup(users)


class RowLookup:
    """Handles → rows of the sorted ``users`` (-1: none).  A table indexed by handle when the handles
    are small non-negative integers (one gather per pair; a binary search per pair was a sixth of
    the fusion's time), else a binary search."""

    def __init__(self, users: np.ndarray) -> None:
        self.users = np.asarray(users, dtype=np.int64)
        self.table: np.ndarray | None = None
        if len(self.users) and self.users[0] >= 0 and self.users[-1] < 4 * len(self.users) + (1 << 16):
            self.table = np.full(int(self.users[-1]) + 1, -1, dtype=np.int64)
            self.table[self.users] = np.arange(len(self.users))

    def __call__(self, handles: np.ndarray) -> np.ndarray:
        if len(self.users) == 0:
            return np.full(len(handles), -1, dtype=np.int64)
        if self.table is not None:
            inside = (handles >= 0) & (handles < len(self.table))
            return np.where(inside, self.table[np.where(inside, handles, 0)], -1)
        at = np.minimum(np.searchsorted(self.users, handles), len(self.users) - 1)
        return np.where(self.users[at] == handles, at, -1)


def pair_cosines(unit: np.ndarray | sparse.csr_matrix, rows: RowLookup, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine (clipped at 0) of users ``a[i]`` and ``b[i]`` from row-normalised ``unit`` (its rows by
    handle: ``rows``); 0 for a user without a row.  Each pair's rows are read in place by the
    compiled kernel of :mod:`recommender.search.pair_dots` (over both cores), never gathered."""
    ia, ib = rows(a), rows(b)
    known = (ia >= 0) & (ib >= 0)
    return np.where(known, np.clip(pair_dots(unit, np.maximum(ia, 0), np.maximum(ib, 0)), 0.0, 1.0), 0.0)
