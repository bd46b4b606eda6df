from __future__ import annotations

from typing import Self

import numpy as np
import pytest

from recommender.data.loader import Tables
from recommender.models.base import SimilarityModel
from recommender.models import ensemble
from recommender.models.ensemble import AFFINITY_MODEL, EnsembleUserSimilarity, pair_cosines, unit_vectors
from recommender.models.registry import create_model
from recommender.search.neighbours import head
from recommender.search.selection import tie_key
from recommender.topk import Neighbours, similar_users


def lists(users, similar) -> Neighbours:
    similar = np.asarray(similar, dtype=np.int64)
    return Neighbours(np.asarray(users, dtype=np.int64), similar, np.where(similar >= 0, 0.5, np.nan).astype(np.float32))


class FixedVectors(SimilarityModel):
    """A real model whose user vectors are given (no tables): the cosines are known by hand."""

    def __init__(self, users, vectors) -> None:
        super().__init__()
        self.users_, self.vectors_ = np.asarray(users, dtype=np.int64), np.asarray(vectors, dtype=np.float64)

    def fit(self, tables: Tables) -> Self:
        return self


def test_reciprocal_rank_fusion_by_hand():
    a = lists([1, 2], [[10, 11, 12], [-1, -1, -1]])
    b = lists([1, 3], [[12, 13, -1], [1, -1, -1]])
    model = EnsembleUserSimilarity({"a": 2.0, "b": 1.0}, fusion="rrf", c=1.0, affinity=0.0)
    answer = model.combine({"a": a, "b": b}, 3)
    np.testing.assert_array_equal(answer.users, [1, 3])  # user 2 has no neighbour in any list
    best = 3.0 / 2.0
    # user 1: 10 -> 2/2 = 1.0; 12 -> 2/4 + 1/2 = 1.0 (a tie: by the tie key); 11 -> 2/3
    tied = [10, 12] if tie_key(1, 10) < tie_key(1, 12) else [12, 10]
    np.testing.assert_array_equal(answer.similar[0], [*tied, 11])
    np.testing.assert_allclose(answer.scores[0], np.array([1.0, 1.0, 2 / 3]) / best, atol=1e-6)
    np.testing.assert_array_equal(answer.similar[1], [1, -1, -1])
    # the reasons: which models list each neighbour, with their share of the fused score
    reasons = model.explain(answer).for_row(0, 3)
    by_neighbour = dict(zip(answer.similar[0].tolist(), reasons))
    assert by_neighbour[12] == [("model", "a", round(0.5 / best, 3)), ("model", "b", round(0.5 / best, 3))]
    assert by_neighbour[10] == [("model", "a", round(1.0 / best, 3))]


def _deep_lists() -> dict[str, Neighbours]:
    """User 1: model a ranks 109 9th (and nothing else above 11); a and b both rank 200 between 11 and 50."""
    a = np.arange(1000, 1050)  # 50 distinct fillers
    a[8], a[19] = 109, 200  # a: 109 9th, 200 20th
    b = np.arange(2000, 2050)
    b[14] = 200  # b: 200 15th
    return {"a": lists([1], [a]), "b": lists([1], [b])}


def test_deeper_rrf_lifts_a_candidate_two_models_rank_11_to_50_above_one_only_one_ranks_9th():
    deep = EnsembleUserSimilarity({"a": 1.0, "b": 1.0}, depth=50, fusion="rrf", affinity=0.0).combine(_deep_lists(), 10)
    # 200: 1/(60+20) + 1/(60+15) = 0.0258 > 109: 1/(60+9) = 0.0145 (and every rank-1..8 candidate: <= 1/61)
    assert 200 in deep.similar[0] and 109 not in deep.similar[0]
    assert list(deep.similar[0]).index(200) == 0
    shallow = EnsembleUserSimilarity({"a": 1.0, "b": 1.0}, depth=10, fusion="rrf", affinity=0.0).combine(_deep_lists(), 10)
    assert 200 not in shallow.similar[0]  # at depth 10 neither model lists it


def test_cosine_fusion_rescoring_every_candidate_under_every_model_by_hand():
    users = [1, 2, 3, 4]
    # a: 2 is closest to 1 (cos 0.96), then 3 (0.6), 4 orthogonal; b: 3 identical to 1, 2 orthogonal, 4 half
    a = FixedVectors(users, [[1.0, 0.0], [0.96, 0.28], [0.6, 0.8], [0.0, 1.0]])
    b = FixedVectors(users, [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, np.sqrt(0.75)]])
    models = {"a": a, "b": b}
    found = {h: similar_users(m, 1) for h, m in models.items()}  # depth 1: a lists 2, b lists 3 for user 1
    np.testing.assert_array_equal([found["a"].similar[0, 0], found["b"].similar[0, 0]], [2, 3])
    ensemble = EnsembleUserSimilarity({"a": 1.0, "b": 3.0}, depth=1, affinity=0.0)
    answer = ensemble.combine(found, 2, models=models)
    # 3: (1·0.6 + 3·1.0)/4 = 0.9 beats 2: (1·0.96 + 3·0)/4 = 0.24, though a ranks 2 first
    np.testing.assert_array_equal(answer.similar[0], [3, 2])
    np.testing.assert_allclose(answer.scores[0], [0.9, 0.24], atol=1e-6)
    assert ensemble.explain(answer).for_row(0, 1)[0] == [("model", "b", 0.75), ("model", "a", 0.15)]
    # without the fitted models, a cosine is only known where the model lists the candidate
    alone = EnsembleUserSimilarity({"a": 1.0, "b": 3.0}, depth=1).combine(found, 2)
    np.testing.assert_allclose(alone.scores[0], [0.75, 0.24], atol=1e-6)


def test_pair_cosines_are_zero_for_users_a_model_has_no_vector_for():
    model = FixedVectors([1, 2], [[3.0, 4.0], [4.0, 3.0]])
    np.testing.assert_allclose(pair_cosines(*unit_vectors(model), np.array([1, 1, 5]), np.array([2, 1, 1])), [0.96, 1.0, 0.0])


def test_head_keeps_the_first_n_only():
    deep = lists([1], [[5, 6, 7]])
    np.testing.assert_array_equal(head(deep, 2).similar, [[5, 6]])
    assert head(deep, 3) is deep


def test_zero_weight_models_are_left_out_and_missing_lists_skipped():
    a = lists([1], [[10, 11]])
    model = EnsembleUserSimilarity({"a": 1.0, "b": 0.0, "c": 1.0}, affinity=0.0)
    assert model.components == ("a", "c")
    assert EnsembleUserSimilarity({"a": 1.0}).components == ("a", AFFINITY_MODEL)  # the affinity's model stays
    equal = [10, 11] if tie_key(1, 10) < tie_key(1, 11) else [11, 10]  # equal scores: by the tie key
    np.testing.assert_array_equal(model.combine({"a": a, "b": lists([1], [[99, -1]])}, 2).similar, [equal])
    with pytest.raises(ValueError, match="none of the ensemble"):
        model.combine({"b": a}, 2)


@pytest.mark.parametrize("fusion", ["cosine", "rrf"])
def test_covers_every_user_any_component_covers_and_equals_standalone_fit(small_tables, fusion):
    weights = {"tfidf_user_interest": 1.0, "als_collab_filtering_user_course_view": 1.0}
    models = {h: create_model(h).fit(small_tables) for h in weights}
    components = {h: similar_users(m, 50) for h, m in models.items()}
    fused = EnsembleUserSimilarity(weights, fusion=fusion).combine(components, 10, models=models)
    covered = set().union(*({int(u) for u, _, _ in c.rows()} for c in components.values()))
    assert {int(u) for u, _, _ in fused.rows()} == covered
    standalone = create_model("ensemble_user_similarity", weights=weights, fusion=fusion).fit(small_tables)
    np.testing.assert_array_equal(similar_users(standalone, 10).similar, fused.similar)


def test_fusing_in_user_blocks_gives_the_same_answer(small_tables, monkeypatch):
    weights = {"tfidf_user_interest": 1.0, "als_collab_filtering_user_course_view": 1.0}
    models = {h: create_model(h).fit(small_tables) for h in weights}
    components = {h: similar_users(m, 50) for h, m in models.items()}
    whole = EnsembleUserSimilarity(weights).combine(components, 10, models=models)
    monkeypatch.setattr(ensemble, "USER_BLOCK", 7)  # many blocks, a user's lists split over none
    blocks = EnsembleUserSimilarity(weights).combine(components, 10, models=models)
    np.testing.assert_array_equal(whole.similar, blocks.similar)
    np.testing.assert_array_equal(whole.scores, blocks.scores)


def test_a_fusion_told_it_is_the_last_use_frees_the_components_vectors_and_answers_the_same(small_tables):
    weights = {"tfidf_user_interest": 1.0, "als_collab_filtering_user_course_view": 1.0}
    models = {h: create_model(h).fit(small_tables) for h in weights}
    components = {h: similar_users(m, 50) for h, m in models.items()}
    kept = EnsembleUserSimilarity(weights).combine(components, 10, models=models)
    assert all(m.vectors_ is not None for m in models.values())  # by default the caller may still use them
    freed = EnsembleUserSimilarity(weights).combine(components, 10, models=models, release_models=True)
    assert all(m.vectors_ is None and m.users_ is None for m in models.values())
    np.testing.assert_array_equal(kept.similar, freed.similar)
    np.testing.assert_array_equal(kept.scores, freed.scores)


@pytest.mark.parametrize("params", [{"weights": {"a": -1.0}}, {"weights": {"a": 0.0}, "affinity": 0.0}, {"c": -1.0},
                                    {"depth": 0}, {"fusion": "borda"}, {"affinity": -1.0}, {"activity_power": -0.5}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        EnsembleUserSimilarity(**params)


def _fusion_peak(users: int, depth: int = 50) -> int:
    """Traced peak bytes of fusing two random depth-50 lists of ``users`` users (the lists made before)."""
    import tracemalloc

    rng = np.random.default_rng(1)
    handles = np.arange(users, dtype=np.int64)
    lists = {}
    for name in ("a", "b"):
        scores = np.ascontiguousarray(np.sort(rng.random((users, depth)).astype(np.float32), axis=1)[:, ::-1])
        lists[name] = Neighbours(handles, rng.integers(0, users, (users, depth)), scores)
    tracemalloc.start()
    try:
        EnsembleUserSimilarity({"a": 1.0, "b": 1.0}, depth=depth, affinity=0.0).combine(lists, 10)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fusion_memory_grows_with_the_answers_not_with_users_squared_nor_the_pool():
    # Users are fused a block at a time: 4x the users adds only the answers (users x N x models),
    # not the (user, candidate) pool of users x depth x models, and nothing near users x users.
    small, large = _fusion_peak(10_000), _fusion_peak(40_000)
    answers = 30_000 * 10 * (8 + 4 + 2 * 8)  # the extra users' similar, scores, contributions
    assert large < small + 2 * answers, f"{small / 2**20:.0f} MB at 10,000 users, {large / 2**20:.0f} MB at 40,000"
    assert large < 40_000**2 * 4 / 16


def _brute_force_fusion(lists, models, weights, n, affinity=0.0, power=0.0):
    """The fused top ``n`` of every user, one user at a time from whole cosine matrices (an oracle);
    the ALS model's affinity and activity are computed from its factors and course factors directly."""
    best = sum(weights.values()) + affinity
    als = models.get(AFFINITY_MODEL)
    if als is not None:
        als_rows = dict(zip(als.users_.tolist(), range(len(als.users_))))
        vectors = np.asarray(als.vectors_, dtype=np.float64)
        factors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-300)
        confidence = als.confidence_.toarray()
        profiles = (confidence / confidence.sum(axis=1, keepdims=True)) @ als.course_factors_
        taste = np.clip(factors @ profiles.T / np.linalg.norm(profiles, axis=1).max(), 0.0, 1.0)
        courses = (confidence > 0).sum(axis=1)
    cosines = {}
    for handle, model in models.items():
        vectors, users = model.user_vectors()
        dense = np.asarray(vectors.toarray() if hasattr(vectors, "toarray") else vectors, dtype=np.float64)
        unit = dense / np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-300)
        cosines[handle] = (dict(zip(users.tolist(), range(len(users)))), np.clip(unit @ unit.T, 0.0, 1.0))
    answers = {}
    users = sorted(set().union(*(set(a.users[a.similar[:, 0] >= 0].tolist()) for a in lists.values())))
    for user in users:
        pool = set()
        for answer in lists.values():
            row = np.flatnonzero(answer.users == user)
            pool |= {int(v) for v in answer.similar[row[0], :50] if v >= 0} if len(row) else set()
        scored = []
        for v in pool:
            parts = []
            for handle, weight in weights.items():
                rows, cos = cosines[handle]
                known = user in rows and v in rows
                parts.append(weight * (cos[rows[user], rows[v]] if known else 0.0) / best)
                if handle == AFFINITY_MODEL and affinity and user in als_rows and v in als_rows:
                    parts[-1] += affinity * taste[als_rows[user], als_rows[v]] / best
            if power:
                active = np.log(2.0 + (courses[als_rows[v]] if v in als_rows else 0)) / np.log(2.0 + courses.max())
                parts = [p * active**power for p in parts]
            score = round(float(np.sum(parts)), 6)
            if score > 0:
                scored.append((-score, int(tie_key(user, v)), v, parts))
        scored.sort(key=lambda s: s[:3])
        scored = [(s, v, p) for s, _, v, p in scored]
        answers[user] = scored[:n]
    return answers


@pytest.mark.parametrize("taste", [{"affinity": 0.0, "activity_power": 0.0}, {"affinity": 1.0, "activity_power": 1.0},
                                   {"affinity": 0.5, "activity_power": 2.0}], ids=["cosines", "default", "other"])
def test_cosine_fusion_equals_a_brute_force_oracle(small_tables, taste):
    weights = {"tfidf_user_interest": 1.0, "als_collab_filtering_user_course_view": 1.0,
               "knn_collab_filtering_user_assessment_score": 0.5}
    if taste["affinity"] == 1.0:
        weights = {**ensemble.DEFAULT_WEIGHTS, AFFINITY_MODEL: 0.0}
        weights = {h: w for h, w in weights.items() if w > 0 or h == AFFINITY_MODEL}
    models = {h: create_model(h).fit(small_tables) for h in weights}
    components = {h: similar_users(m, 50) for h, m in models.items()}
    model = EnsembleUserSimilarity(weights, **taste)
    fused = model.combine(components, 10, models=models)
    oracle = _brute_force_fusion(components, models, weights, 10, taste["affinity"], taste["activity_power"])
    assert fused.users.tolist() == sorted(oracle)
    for i, user in enumerate(fused.users.tolist()):
        expected = oracle[user]
        k = len(expected)
        assert fused.similar[i, :k].tolist() == [v for _, v, _ in expected] and (fused.similar[i, k:] == -1).all()
        np.testing.assert_allclose(fused.scores[i, :k], [-s for s, _, _ in expected], atol=1e-6)
        np.testing.assert_allclose(model.contributions_[i, :k], [p for _, _, p in expected], atol=1e-7)
