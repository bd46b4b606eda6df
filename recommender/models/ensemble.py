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
  ``(log(2 + courses_v) / log(2 + max courses))^β`` (``activity_scale="log"``, default) or
  ``((1 + courses_v) / (1 + max courses))^β`` (``"count"``: β = 0.5 and 1 give the square root of
  the count and the count itself).  Of two equally close users, the one who watched more courses
  has more to share; β = 0 turns it off.
* the ALS *taste-profile cosine* (``profile_weight``, 0 by default: left out): the cosine of the two
  users' taste profiles (the confidence-weighted mean factors of the courses each watched), which
  asks whether they watch the same kind of course rather than whether their factors agree.

The fused score ``activity_v^β · (Σ_m w_m·cos_m(u, v) + affinity·aff(u, v) + profile_weight·pcos(u, v))
/ (Σ_m w_m + affinity + profile_weight)`` is at most 1.  ``sharpen`` (α, 1 by default) publishes
``best_u · (score / best_u)^α`` instead, ``best_u`` the user's best fused score: the order and the
best neighbour's score stay; α > 1 weighs the closest neighbours more against the others for
whoever weighs neighbours by their scores (the evaluation recommends the courses of the neighbours
so weighted: a user's weights to the power α, as the scale of a row does not change its ranking),
α < 1 less.  Not ``score^α`` itself: at the 6 stored decimals the fourth power of a fused score of
0.1 keeps two digits.

``few_views`` > 0 fuses the users with fewer than that many distinct courses in the ALS model's
data (none: 0) with their own weights (``few_views_weights``, ``few_views_affinity``; None: the
common ones), normalised by their own total: a light viewer's ALS factors rest on a few courses.
``component_params`` (``{handle: {param: value}}``) are the components' own parameters when the
ensemble fits them itself; fusing a run's fitted models, it checks that they have them.

All weights, ``depth``, β and the other options were chosen on the validation split carved out of
the training split (never on the held-out test items): docs/evaluation/tuning.md lists every variant
tried with its standard error.  The selection metric is held-out-course NDCG; the assessment
model's weight 0.25 is its best on validation (within the noise of 0 and 0.5 on courses; it adds
what the assessment model knows, the next assessment, at no cost to courses).  A model with weight 0
is left out (the ALS model stays while the affinity, the profile cosine or ``few_views`` need it).
Every user any component answers for gets an answer.

Each neighbour's reasons are the models that support it, with their share of its fused score (the
affinity and the profile cosine count as the ALS model's).
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
ActivityScale = Literal["log", "count"]

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
#: Light viewers for the per-bucket variants: fewer distinct courses than this in the ALS model's data
#: (none, one or two: factors that rest on at most two courses).
FEW_VIEWS = 3


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
        {"activity_scale": "count", "activity_power": 0.5},
        {"activity_scale": "count", "activity_power": 1.0},
        {"weights": _with(tfidf_user_interest=0.0)},
        {"weights": _with(tfidf_user_interest=0.5)},
        {"weights": _with(als_collab_filtering_user_course_view=0.25)},
        {"weights": _with(knn_collab_filtering_user_course_view=0.1)},
        {"weights": _with(knn_collab_filtering_user_assessment_score=0.0)},
        {"weights": _with(knn_collab_filtering_user_assessment_score=0.5)},
        {"weights": _with(knn_collab_filtering_user_assessment_score=1.0)},
        {"profile_weight": 0.25},
        {"profile_weight": 1.0},
        {"few_views": FEW_VIEWS, "few_views_weights": _with(tfidf_user_interest=0.5)},
        {"few_views": FEW_VIEWS, "few_views_weights": _with(tfidf_user_interest=1.0), "few_views_affinity": 0.5},
        {"component_params": {AFFINITY_MODEL: {"factors": 64}}},
        {"component_params": {AFFINITY_MODEL: {"factors": 128}}},
        {"depth": 25},
        {"depth": 100},
        {"sharpen": 0.5},
        {"sharpen": 2.0},
        {"sharpen": 4.0},
        {"fusion": "rrf", "weights": RRF_WEIGHTS, "affinity": 0.0, "activity_power": 0.0},
    ]
    tuning_target = ("courses", "ndcg_at_{k}")

    def __init__(self, weights: Mapping[str, float] = DEFAULT_WEIGHTS, depth: int = DEFAULT_DEPTH,
                 fusion: Fusion = "cosine", c: float = 60.0, affinity: float = DEFAULT_AFFINITY,
                 activity_power: float = DEFAULT_ACTIVITY_POWER, activity_scale: ActivityScale = "log",
                 profile_weight: float = 0.0, sharpen: float = 1.0, few_views: int = 0,
                 few_views_weights: Mapping[str, float] | None = None, few_views_affinity: float | None = None,
                 component_params: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        if affinity < 0 or activity_power < 0 or profile_weight < 0:
            raise ValueError("affinity, activity_power and profile_weight must be >= 0")
        if any(w < 0 for w in weights.values()) or not (
                any(w > 0 for w in weights.values()) or affinity > 0 or profile_weight > 0):
            raise ValueError("ensemble weights must be >= 0 with at least one > 0 (or affinity > 0)")
        if fusion not in ("cosine", "rrf"):
            raise ValueError(f"fusion must be cosine or rrf, not {fusion!r}")
        if activity_scale not in ("log", "count"):
            raise ValueError(f"activity_scale must be log or count, not {activity_scale!r}")
        if c < 0:
            raise ValueError("c must be >= 0")
        if int(depth) < 1:
            raise ValueError("depth must be >= 1")
        if not sharpen > 0:
            raise ValueError("sharpen must be > 0")
        if int(few_views) < 0:
            raise ValueError("few_views must be >= 0")
        few_weights = weights if few_views_weights is None else few_views_weights
        few_affinity = affinity if few_views_affinity is None else few_views_affinity
        if few_affinity < 0 or any(w < 0 for w in few_weights.values()) or not (
                any(w > 0 for w in few_weights.values()) or few_affinity > 0 or profile_weight > 0):
            raise ValueError("few_views_weights must be >= 0 with at least one > 0 (or few_views_affinity > 0)")
        self.weights, self.depth, self.fusion, self.c = weights, depth, fusion, c
        self.affinity, self.activity_power, self.activity_scale = affinity, activity_power, activity_scale
        self.profile_weight, self.sharpen = profile_weight, sharpen
        self.few_views, self.few_views_weights = few_views, few_views_weights
        self.few_views_affinity = few_views_affinity
        self.component_params = component_params
        unknown = set(component_params or {}) - set(self.components)
        if unknown:
            raise ValueError(f"component_params for {', '.join(sorted(unknown))}, which the ensemble does not fuse")

    @property
    def components(self) -> tuple[str, ...]:
        """The models the ensemble fuses (weight > 0 in either bucket, or the ALS model for the
        affinity, the profile cosine or the buckets), in the weights' order."""
        buckets = [self.weights] + ([self.few_views_weights] if self.few_views > 0 and self.few_views_weights else [])
        wanted = {h for weights in buckets for h, w in weights.items() if w > 0}
        if self.affinity > 0 or self.profile_weight > 0 or self.few_views > 0:
            wanted.add(AFFINITY_MODEL)
        return tuple(dict.fromkeys(h for weights in buckets for h in (*weights, AFFINITY_MODEL) if h in wanted))

    def _own_params(self, handle: str) -> dict[str, Any]:
        return dict((self.component_params or {}).get(handle, {}))

    def fit(self, tables: Tables) -> Self:
        """Fit every component on ``tables`` (the standalone path, run without the other models): the
        search (:func:`recommender.topk.similar_users`) lists their candidates and calls :meth:`combine`."""
        from recommender.models.registry import create_model

        self.component_models_ = {handle: create_model(handle, **self._own_params(handle)).fit(tables)
                                  for handle in self.components}
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
        for h in used:  # a run's fitted component must be the one the ensemble was tuned with
            own = self._own_params(h)
            fitted = models[h].get_params() if own and models and h in models else {}
            differ = {k: v for k, v in own.items() if fitted and fitted.get(k) != v}
            if differ:
                raise ValueError(f"the ensemble's component {h} needs {differ}, but the run's model has "
                                 f"{ {k: fitted.get(k) for k in differ} }")
        n = n or max(lists[h].similar.shape[1] for h in used)
        lists = {h: head(lists[h], int(self.depth)) for h in used}
        users = np.unique(np.concatenate([lists[h].users[lists[h].similar[:, 0] >= 0] for h in used]))
        units = {}
        taste = None
        taste_model = (models or {}).get(AFFINITY_MODEL)
        if taste_model is not None and AFFINITY_MODEL in used and (
                self.affinity > 0 or self.activity_power > 0 or self.profile_weight > 0 or self.few_views > 0):
            taste = Taste(*taste_model.taste(), profile_cosine=self.profile_weight > 0)
        if self.few_views > 0 and taste is None:
            raise ValueError(f"few_views needs the fitted {AFFINITY_MODEL} model (its users' course counts)")
        for h in used:
            if self.fusion == "cosine" and models and h in models and self._weighted(h):
                units[h] = unit_vectors(models[h])
            if release_models and models and h in models:
                models[h].release()
        return FusedSearch(self, used, lists, users, units, taste, n)

    def _weighted(self, handle: str) -> bool:
        """Whether ``handle``'s cosine counts for some user (its weight in either bucket > 0)."""
        few = self.few_views_weights if self.few_views > 0 and self.few_views_weights is not None else {}
        return self.weights.get(handle, 0.0) > 0 or few.get(handle, 0.0) > 0

    def _weight(self, handle: str, few: np.ndarray | None) -> float | np.ndarray:
        """``handle``'s weight: one number, or per pair (``few``: whether the pair's user is a light viewer)."""
        weight = self.weights.get(handle, 0.0)
        if few is None:
            return weight
        light = self.weights if self.few_views_weights is None else self.few_views_weights
        return np.where(few, light.get(handle, 0.0), weight)

    def _evidence(self, lists: Mapping[str, Neighbours], used: list[str], block: np.ndarray,
                  units: Mapping[str, tuple[Any, np.ndarray]], taste: Taste | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (row in ``block``, candidate) any component lists, once, and each model's part of its
        fused score (divided by the best possible total, so that the fused score is at most 1)."""
        # the light viewers of the block (few_views > 0 only), by row
        light = taste.course_count(block) < int(self.few_views) if self.few_views > 0 else None
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
            weight = self._weight(handle, None if light is None else light[rows[-1]])
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
        few = None if light is None else light[row]
        parts = np.zeros((len(row), len(used)))  # [pair, model]: that model's weighted evidence
        offset = 0
        for i, (handle, evidence) in enumerate(zip(used, listed)):
            parts[pair_of[offset:offset + len(evidence)], i] = evidence
            offset += len(evidence)
            if handle in units:  # every candidate re-scored, not only those the model lists
                parts[:, i] = self._weight(handle, few) * pair_cosines(*units[handle], block[row], col)
        best = self._best(used, self.weights, self.affinity, taste)
        if few is not None:  # each bucket by its own total
            light_weights = self.weights if self.few_views_weights is None else self.few_views_weights
            light_affinity = self.affinity if self.few_views_affinity is None else self.few_views_affinity
            best = np.where(few, self._best(used, light_weights, light_affinity, taste), best)[:, None]
        if taste is not None:
            als = used.index(AFFINITY_MODEL)
            if few is not None:
                affinity = np.where(few, light_affinity, self.affinity)
                if (affinity > 0).any():
                    parts[:, als] += affinity * taste.affinity(block[row], col)
            elif self.affinity > 0:  # the ALS model's part: its cosine (if weighted) plus the affinity
                parts[:, als] += self.affinity * taste.affinity(block[row], col)
            if self.profile_weight > 0:
                parts[:, als] += self.profile_weight * taste.profile_cosine(block[row], col)
            if self.activity_power > 0:
                parts *= taste.activity(col, self.activity_power, self.activity_scale)[:, None]
        parts = parts / best
        if self.sharpen != 1.0:  # the row's best × (total / best)^α, shared out as before
            total = parts.sum(axis=1)
            starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])  # pairs are sorted by row
            top = np.repeat(np.maximum.reduceat(total, starts), np.diff(np.r_[starts, len(row)]))
            sharp = top * np.divide(total, top, out=np.zeros_like(total), where=top > 0) ** self.sharpen
            parts *= np.divide(sharp, total, out=np.zeros_like(total), where=total > 0)[:, None]
        return row, col, parts

    def _best(self, used: list[str], weights: Mapping[str, float], affinity: float, taste: Taste | None) -> float:
        """The largest fused score before the division: every weight (at rank 1 for the rank fusion),
        plus the ALS model's affinity and profile cosine when they are computed."""
        best = sum(weights.get(h, 0.0) / (self.c + 1.0) if self.fusion == "rrf" else weights.get(h, 0.0) for h in used)
        if taste is not None:
            best += (affinity if affinity > 0 else 0.0) + self.profile_weight
        return best

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
    """The ALS model's taste profiles, made once per fusion: the affinity and the profile cosine of
    (user, candidate) pairs, the candidates' activity factor and the users' course counts (module
    docstring)."""

    def __init__(self, users: np.ndarray, factors: np.ndarray, profiles: np.ndarray, activity: np.ndarray,
                 *, profile_cosine: bool = False) -> None:
        self.rows = RowLookup(users)
        largest = float(np.linalg.norm(profiles, axis=1).max(initial=0.0))
        # one matrix, factors then scaled profiles (then unit profiles, for their cosine): the pair
        # kernel reads the rows in place
        stacked = [np.asarray(factors, dtype=np.float64),
                   np.asarray(profiles, dtype=np.float64) / (largest if largest > 0 else 1.0)]
        if profile_cosine:
            stacked.append(normalize(np.asarray(profiles, dtype=np.float64)))
        self.stacked = np.vstack(stacked)
        self.count = len(users)
        self.courses = np.asarray(activity, dtype=np.int64)
        self.log_activity = np.log(2.0 + np.asarray(activity, dtype=np.float64))
        self.log_most = float(self.log_activity.max(initial=np.log(2.0)))

    def affinity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``factor_a · profile_b`` over the largest profile norm, clipped to [0, 1]; 0 without a row."""
        return self._pairs(a, b, 0, self.count)

    def profile_cosine(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The cosine of ``a``'s and ``b``'s taste profiles, clipped to [0, 1]; 0 without a row."""
        if len(self.stacked) < 3 * self.count:
            raise ValueError("Taste was made without profile_cosine=True")
        return self._pairs(a, b, 2 * self.count, 2 * self.count)

    def _pairs(self, a: np.ndarray, b: np.ndarray, a_from: int, b_from: int) -> np.ndarray:
        ia, ib = self.rows(a), self.rows(b)
        known = (ia >= 0) & (ib >= 0)
        dots = pair_dots(self.stacked, a_from + np.maximum(ia, 0), b_from + np.maximum(ib, 0))
        return np.where(known, np.clip(dots, 0.0, 1.0), 0.0)

    def course_count(self, b: np.ndarray) -> np.ndarray:
        """Distinct courses of each user of ``b`` in the ALS model's data (0 for a user without views)."""
        ib = self.rows(b)
        return np.where(ib >= 0, self.courses[np.maximum(ib, 0)], 0)

    def activity(self, b: np.ndarray, power: float, scale: ActivityScale = "log") -> np.ndarray:
        """``(log(2 + courses_b) / log(2 + most courses))^power`` (``scale="log"``) or
        ``((1 + courses_b) / (1 + most courses))^power`` (``"count"``); a user without views: 0 courses."""
        if scale == "count":
            return ((1.0 + self.course_count(b)) / (1.0 + self.courses.max(initial=0))) ** power
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
