"""``ensemble_user_similarity``: the other models' neighbour lists of the same run, fused.

Each component model lists every user's top ``depth`` candidates (50 by default, deeper than the
N it stores), so that a user two models both rank 20th is in the pool.  Every candidate in the pool
is then scored on what each component knows:

* the components' cosines (``fusion="cosine"``, default): the cosine of the two users under each
  component's own fitted vectors (one row-wise product per (user, candidate) pair, in blocks:
  users × depth × models pairs, never users × users), weighted by ``weights``.  Without the fitted
  models (``combine(lists)`` alone) a component's cosine is known only where it lists the
  candidate; elsewhere it counts 0.  ``fusion="rrf"`` instead adds the weighted reciprocal ranks
  ``w_m / (c + rank_m(u, v))`` (Cormack, Clarke & Büttcher 2009), kept for comparison.
* the ALS model's *taste affinity* (``affinity``, its weight): ``factor_u · profile_v / max‖profile‖``,
  the mean score ALS predicts for ``u`` over the courses ``v`` watched (clipped to [0, 1]).  The ALS
  cosine compares two users' factors; the affinity asks whether ``u`` would like what ``v`` watches,
  which is what a neighbour is for.  ALS's own course scores recommend held-out courses far better
  than its user–user cosine does (``als_direct_items`` in docs/evaluation/results.md): the affinity
  carries that knowledge into the choice of neighbours.
* the neighbour's *activity* (``activity_power``, β): the fused score is multiplied by
  ``(log(2 + courses_v) / log(2 + max courses))^β``.  Of two equally close users, the one who watched
  more courses has more to share; β = 0 turns it off.

The fused score ``activity_v^β · (Σ_m w_m·cos_m(u, v) + affinity·aff(u, v)) / (Σ_m w_m + affinity)``
is at most 1.  All weights, ``depth`` and β were chosen on the validation split carved out of the
training split (never on the held-out test items): docs/evaluation/tuning.md lists every variant
tried with its standard error.  The selection metric is held-out-course NDCG; the assessment
model's weight 0.25 is its best on validation (within the noise of 0 and 0.5 on courses; it adds
what the assessment model knows, the next assessment, at no cost to courses).  A model with weight 0 is left out (the ALS model stays while
``affinity`` > 0).  Every user any component answers for gets an answer.

Each neighbour's reasons are the models that support it, with their share of its fused score (the
affinity counts as the ALS model's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

import numba
import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize

from recommender.data.loader import Tables
from recommender.models.base import SimilarityModel
from recommender.reasons import Explanations, agreeing_models
from recommender.search.neighbours import SCORE_DECIMALS, Neighbours, Search, head
from recommender.search.pair_dots import pair_dots
from recommender.search.selection import tie_key

Fusion = Literal["cosine", "rrf"]

DEFAULT_WEIGHTS: dict[str, float] = {
    "tfidf_user_interest": 0.25,
    "knn_collab_filtering_user_course_view": 0.0,
    "als_collab_filtering_user_course_view": 0.0,
    "knn_collab_filtering_user_assessment_score": 0.25,
    "dnn_collab_filtering_user_course_level": 0.0,
}
#: The cosine weights before the affinity and the activity (tfidf 1, ALS 1, assessments 0.5).
COSINE_WEIGHTS: dict[str, float] = {**DEFAULT_WEIGHTS, "tfidf_user_interest": 1.0,
                                    "als_collab_filtering_user_course_view": 1.0,
                                    "knn_collab_filtering_user_assessment_score": 0.5}
AFFINITY_MODEL = "als_collab_filtering_user_course_view"  # whose taste profiles give the affinity
DEFAULT_AFFINITY = 1.0
DEFAULT_ACTIVITY_POWER = 1.0
DEFAULT_DEPTH = 50
USER_BLOCK = 4096  # users fused at a time: bounds the (user, candidate) pairs held at once
#: The weights of the top-10 rank fusion this model replaced (ALS leads, the others re-rank and fill in).
RRF_WEIGHTS = {**COSINE_WEIGHTS, "knn_collab_filtering_user_course_view": 1.0, "als_collab_filtering_user_course_view": 2.0}


def _with(**changes: float) -> dict[str, float]:
    return {**DEFAULT_WEIGHTS, **changes}


class EnsembleUserSimilarity(SimilarityModel):
    # Chosen on the validation split (docs/evaluation/tuning.md), one change at a time; the first
    # entries are the fusions this default replaced (cosines alone, then with the activity).
    tuning_grid = [
        {},
        {"weights": COSINE_WEIGHTS, "affinity": 0.0, "activity_power": 0.0},
        {"weights": COSINE_WEIGHTS, "affinity": 0.0},
        {"weights": COSINE_WEIGHTS, "affinity": 1.0},
        {"affinity": 0.0, "weights": _with(als_collab_filtering_user_course_view=1.0)},
        {"activity_power": 0.0},
        {"activity_power": 0.5},
        {"activity_power": 2.0},
        {"weights": _with(tfidf_user_interest=0.0)},
        {"weights": _with(tfidf_user_interest=0.5)},
        {"weights": _with(als_collab_filtering_user_course_view=0.25)},
        {"weights": _with(knn_collab_filtering_user_course_view=0.1)},
        {"weights": _with(knn_collab_filtering_user_assessment_score=0.0)},
        {"weights": _with(knn_collab_filtering_user_assessment_score=0.5)},
        {"weights": _with(knn_collab_filtering_user_assessment_score=1.0)},
        {"depth": 100},
        {"fusion": "rrf", "weights": RRF_WEIGHTS, "affinity": 0.0, "activity_power": 0.0},
    ]
    tuning_target = ("courses", "ndcg_at_{k}")

    def __init__(self, weights: Mapping[str, float] = DEFAULT_WEIGHTS, depth: int = DEFAULT_DEPTH,
                 fusion: Fusion = "cosine", c: float = 60.0, affinity: float = DEFAULT_AFFINITY,
                 activity_power: float = DEFAULT_ACTIVITY_POWER) -> None:
        if affinity < 0 or activity_power < 0:
            raise ValueError("affinity and activity_power must be >= 0")
        if any(w < 0 for w in weights.values()) or not (any(w > 0 for w in weights.values()) or affinity > 0):
            raise ValueError("ensemble weights must be >= 0 with at least one > 0 (or affinity > 0)")
        if fusion not in ("cosine", "rrf"):
            raise ValueError(f"fusion must be cosine or rrf, not {fusion!r}")
        if c < 0:
            raise ValueError("c must be >= 0")
        if int(depth) < 1:
            raise ValueError("depth must be >= 1")
        self.weights, self.depth, self.fusion, self.c = weights, depth, fusion, c
        self.affinity, self.activity_power = affinity, activity_power

    @property
    def components(self) -> tuple[str, ...]:
        """The models the ensemble fuses (weight > 0, or the ALS model for the affinity), in the weights' order."""
        wanted = {h for h, w in self.weights.items() if w > 0} | ({AFFINITY_MODEL} if self.affinity > 0 else set())
        return tuple(dict.fromkeys(h for h in (*self.weights, AFFINITY_MODEL) if h in wanted))

    def fit(self, tables: Tables) -> Self:
        """Fit every component on ``tables`` (the standalone path, run without the other models): the
        search (:func:`recommender.topk.similar_users`) lists their candidates and calls :meth:`combine`."""
        from recommender.models.registry import create_model

        self.component_models_ = {handle: create_model(handle).fit(tables) for handle in self.components}
        return self

    def combine(self, lists: Mapping[str, Neighbours], n: int | None = None,
                models: Mapping[str, SimilarityModel] | None = None, *, release_models: bool = False) -> Neighbours:
        """Fuse the components' lists into every user's top ``n``, in this process: :meth:`prepare`,
        then its search answered for every user (what a run's partitions do a block of users each)."""
        fused = self.prepare(lists, n, models, release_models=release_models)
        self.neighbours_ = fused.query(np.arange(len(fused.users)))
        self.used_, self.users_, self.contributions_ = fused.used, fused.users, fused.contributions
        return self.neighbours_

    def prepare(self, lists: Mapping[str, Neighbours], n: int | None = None,
                models: Mapping[str, SimilarityModel] | None = None, *, release_models: bool = False) -> FusedSearch:
        """The fusion of the components' lists (their first ``depth``; missing components are
        skipped) as a search whose queries fuse any block of users into their top ``n``; ``models``,
        the fitted components, give the cosines of candidates a component does not list
        (``fusion="cosine"``).  Users are fused ``USER_BLOCK`` at a time, so memory is a block's
        users × depth × models, whatever the number of users.

        ``release_models``: the caller is done with the components (a run fuses last), so each
        forgets its vectors as soon as their normalised copy is made, rather than both being held
        through the fusion."""
        used = [h for h in self.components if h in lists]
        if not used:
            raise ValueError(f"none of the ensemble's models ({', '.join(self.components)}) was computed in this run")
        n = n or max(lists[h].similar.shape[1] for h in used)
        lists = {h: head(lists[h], int(self.depth)) for h in used}
        users = np.unique(np.concatenate([lists[h].users[lists[h].similar[:, 0] >= 0] for h in used]))
        units = {}
        taste = None
        taste_model = (models or {}).get(AFFINITY_MODEL)
        if taste_model is not None and AFFINITY_MODEL in used and (self.affinity > 0 or self.activity_power > 0):
            taste = Taste(*taste_model.taste())
        for h in used:
            if self.fusion == "cosine" and models and h in models and self.weights.get(h, 0.0) > 0:
                units[h] = unit_vectors(models[h])
            if release_models and models and h in models:
                models[h].release()
        return FusedSearch(self, used, lists, users, units, taste, n)

    def _evidence(self, lists: Mapping[str, Neighbours], used: list[str], block: np.ndarray,
                  units: Mapping[str, tuple[Any, np.ndarray]], taste: Taste | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
            weight = self.weights.get(handle, 0.0)
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
                parts[:, i] = self.weights.get(handle, 0.0) * pair_cosines(*units[handle], block[row], col)
        best = sum(self.weights.get(h, 0.0) / (self.c + 1.0) if self.fusion == "rrf" else self.weights.get(h, 0.0)
                   for h in used)
        if taste is not None:
            if self.affinity > 0:  # the ALS model's part: its cosine (if weighted) plus the affinity
                parts[:, used.index(AFFINITY_MODEL)] += self.affinity * taste.affinity(block[row], col)
                best += self.affinity
            if self.activity_power > 0:
                parts *= taste.activity(col, self.activity_power)[:, None]
        return row, col, parts / best

    def explain(self, neighbours: Neighbours) -> Explanations:
        """The models that support the neighbour, by their share of the fused score."""
        return agreeing_models(self.contributions_, self.used_)

    def user_vectors(self) -> Any:
        raise NotImplementedError("the ensemble fuses ranked lists; it has no user vectors")


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_pairs(starts, fused, ties, best):  # pragma: no cover - compiled
    """``best[r]``: the pairs ``starts[r]:starts[r + 1]`` (one row's candidates, by user_handle) with the
    largest positive ``fused``, best first, ties by ``ties`` (the pairs' tie keys, then the lower
    handle): an insertion into the row's top n, over both cores (sorting the block's pairs by row,
    score and key took longer than the fusion)."""
    n = best.shape[1]
    for r in numba.prange(best.shape[0]):
        kept = 0
        for p in range(starts[r], starts[r + 1]):
            score = fused[p]
            if score <= 0 or (kept == n and (score < fused[best[r, n - 1]] or (
                    score == fused[best[r, n - 1]] and ties[p] >= ties[best[r, n - 1]]))):
                continue
            at = min(kept, n - 1)
            # an equal score goes after an equal or lower tie key (a lower handle came earlier)
            while at > 0 and (score > fused[best[r, at - 1]] or (
                    score == fused[best[r, at - 1]] and ties[p] < ties[best[r, at - 1]])):
                best[r, at] = best[r, at - 1]
                at -= 1
            best[r, at] = p
            kept = min(kept + 1, n)


class FusedSearch(Search):
    """The ensemble's fusion, prepared once (its components' lists, their unit vectors, the taste
    profiles): any block of users fused into their top ``n`` (:class:`~recommender.search.neighbours.Search`),
    wherever the run's partitions are.  Its answer for a user depends only on that user's lists."""

    def __init__(self, model: EnsembleUserSimilarity, used: list[str], lists: Mapping[str, Neighbours],
                 users: np.ndarray, units: Mapping[str, tuple[Any, RowLookup]], taste: Taste | None, n: int) -> None:
        self.model, self.used, self.lists, self.users, self.units, self.taste, self.n = (
            model, used, dict(lists), users, dict(units), taste, n)
        #: [i, r, m]: model used[m]'s part of neighbour r's score, for the users of the last query.
        self.contributions: np.ndarray | None = None
        self._queried: np.ndarray | None = None

    def query(self, rows: np.ndarray, threads: int = 2, *, progress: bool = False, desc: str = "top-k") -> Neighbours:
        users = self.users[np.asarray(rows, dtype=np.int64)]  # ascending, as the components' lists
        n = self.n
        similar = np.full((len(users), n), -1, dtype=np.int64)
        scores = np.full((len(users), n), np.nan, dtype=np.float32)
        contributions = np.zeros((len(users), n, len(self.used)))
        for lo in range(0, len(users), USER_BLOCK):
            block = users[lo:lo + USER_BLOCK]
            row, col, parts = self.model._evidence(self.lists, self.used, block, self.units, self.taste)
            fused = np.round(parts.sum(axis=1), SCORE_DECIMALS)
            best = np.full((len(block), n), -1, dtype=np.int64)  # [row, rank]: the pair, best first
            _top_pairs(np.searchsorted(row, np.arange(len(block) + 1)), fused, tie_key(block[row], col), best)
            picked, rank = np.nonzero(best >= 0)
            pair = best[picked, rank]
            similar[picked + lo, rank], scores[picked + lo, rank] = col[pair], fused[pair]
            contributions[picked + lo, rank] = parts[pair]
        self.contributions, self._queried = contributions, users
        return Neighbours(users, similar, scores)

    def explain(self, model: SimilarityModel, neighbours: Neighbours) -> Explanations:
        """The reasons of the users just queried (the same block: a partition explains what it fused)."""
        assert self._queried is not None and np.array_equal(self._queried, neighbours.users), "query these users first"
        return agreeing_models(self.contributions[:, :neighbours.similar.shape[1]], tuple(self.used))

    def release(self) -> None:
        self.lists, self.units, self.taste = {}, {}, None


class Taste:
    """The ALS model's taste profiles, made once per fusion: the affinity of (user, candidate) pairs
    and the candidates' activity factor (module docstring)."""

    def __init__(self, users: np.ndarray, factors: np.ndarray, profiles: np.ndarray, activity: np.ndarray) -> None:
        self.rows = RowLookup(users)
        largest = float(np.linalg.norm(profiles, axis=1).max(initial=0.0))
        # one matrix, factors then scaled profiles: the pair kernel reads both rows in place
        self.stacked = np.vstack([np.asarray(factors, dtype=np.float64),
                                  np.asarray(profiles, dtype=np.float64) / (largest if largest > 0 else 1.0)])
        self.count = len(users)
        self.log_activity = np.log(2.0 + np.asarray(activity, dtype=np.float64))
        self.log_most = float(self.log_activity.max(initial=np.log(2.0)))

    def affinity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``factor_a · profile_b`` over the largest profile norm, clipped to [0, 1]; 0 without a row."""
        ia, ib = self.rows(a), self.rows(b)
        known = (ia >= 0) & (ib >= 0)
        dots = pair_dots(self.stacked, np.maximum(ia, 0), self.count + np.maximum(ib, 0))
        return np.where(known, np.clip(dots, 0.0, 1.0), 0.0)

    def activity(self, b: np.ndarray, power: float) -> np.ndarray:
        """``(log(2 + courses_b) / log(2 + most courses))^power`` (a user without views: 0 courses)."""
        ib = self.rows(b)
        logs = np.where(ib >= 0, self.log_activity[np.maximum(ib, 0)], np.log(2.0))
        return (logs / self.log_most) ** power


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
