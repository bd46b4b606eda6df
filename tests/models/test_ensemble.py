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
                                    {"depth": 0}, {"fusion": "borda"}, {"affinity": -1.0}, {"activity_power": -0.5},
                                    {"activity_scale": "sqrt"}, {"profile_weight": -1.0}, {"sharpen": 0.0},
                                    {"few_views": -1}, {"few_views": 3, "few_views_weights": {"a": -1.0}},
                                    {"few_views": 3, "few_views_weights": {"a": 0.0}, "few_views_affinity": 0.0},
                                    {"few_views_affinity": -1.0}])
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


def _brute_force_fusion(lists, models, weights, n, affinity=0.0, power=0.0, *, scale="log", profile_weight=0.0,
                        few_views=0, few_weights=None, few_affinity=None, sharpen=1.0):
    """The fused top ``n`` of every user, one user at a time from whole cosine matrices (an oracle);
    the ALS model's affinity, profile cosine, activity and course counts are computed from its
    confidences, factors and course factors directly."""
    als = models.get(AFFINITY_MODEL)
    if als is not None:
        als_rows = dict(zip(als.users_.tolist(), range(len(als.users_))))
        vectors = np.asarray(als.vectors_, dtype=np.float64)
        factors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-300)
        confidence = als.confidence_.toarray()
        profiles = (confidence / confidence.sum(axis=1, keepdims=True)) @ als.course_factors_
        taste = np.clip(factors @ profiles.T / np.linalg.norm(profiles, axis=1).max(), 0.0, 1.0)
        unit_profiles = profiles / np.linalg.norm(profiles, axis=1, keepdims=True)
        profile_cos = np.clip(unit_profiles @ unit_profiles.T, 0.0, 1.0)
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
        w, aff = weights, affinity
        if few_views and (courses[als_rows[user]] if user in als_rows else 0) < few_views:
            w = weights if few_weights is None else few_weights
            aff = affinity if few_affinity is None else few_affinity
        best = sum(w.values()) + aff + profile_weight
        pool = set()
        for answer in lists.values():
            row = np.flatnonzero(answer.users == user)
            pool |= {int(v) for v in answer.similar[row[0], :50] if v >= 0} if len(row) else set()
        scored = []
        for v in pool:
            parts = []
            for handle in models:
                rows, cos = cosines[handle]
                known = user in rows and v in rows
                parts.append(w.get(handle, 0.0) * (cos[rows[user], rows[v]] if known else 0.0) / best)
                if handle == AFFINITY_MODEL and user in als_rows and v in als_rows:
                    parts[-1] += (aff * taste[als_rows[user], als_rows[v]]
                                  + profile_weight * profile_cos[als_rows[user], als_rows[v]]) / best
            if power:
                count = courses[als_rows[v]] if v in als_rows else 0
                active = (np.log(2.0 + count) / np.log(2.0 + courses.max()) if scale == "log"
                          else (1.0 + count) / (1.0 + courses.max()))
                parts = [p * active**power for p in parts]
            scored.append((float(np.sum(parts)), v, parts))
        top = max((total for total, _, _ in scored), default=0.0)  # sharpened: top · (total / top)^α
        scored = [(-round(top * (t / top) ** sharpen, 6), int(tie_key(user, v)), v,
                   [part * (top * (t / top) ** sharpen / t) for part in parts] if t > 0 else parts)
                  for t, v, parts in scored if t > 0]
        scored = [s for s in scored if s[0] < 0]
        scored.sort(key=lambda s: s[:3])
        scored = [(s, v, p) for s, _, v, p in scored]
        answers[user] = scored[:n]
    return answers


#: The default's weights (the ALS model listed: its cosine weighs 0, its taste is read).
DEFAULT_FUSED = {h: w for h, w in ensemble.DEFAULT_WEIGHTS.items() if w > 0 or h == AFFINITY_MODEL}
#: The options beside the default, each against the oracle.
OPTIONS = {
    "profile": {"profile_weight": 1.0},
    "count": {"activity_scale": "count", "activity_power": 0.5},
    "buckets": {"few_views": 3, "few_views_weights": {**DEFAULT_FUSED, "tfidf_user_interest": 1.0},
                "few_views_affinity": 0.5},
    "sharpen": {"sharpen": 2.0},
}


@pytest.mark.parametrize("taste", [{"affinity": 0.0, "activity_power": 0.0}, {"affinity": 1.0, "activity_power": 1.0},
                                   {"affinity": 0.5, "activity_power": 2.0}, *OPTIONS.values()],
                         ids=["cosines", "default", "other", *OPTIONS])
def test_cosine_fusion_equals_a_brute_force_oracle(small_tables, taste):
    weights = {"tfidf_user_interest": 1.0, "als_collab_filtering_user_course_view": 1.0,
               "knn_collab_filtering_user_assessment_score": 0.5}
    if taste.get("affinity", ensemble.DEFAULT_AFFINITY) == 1.0:  # the default and the options beside it
        weights = DEFAULT_FUSED
    models = {h: create_model(h).fit(small_tables) for h in weights}
    components = {h: similar_users(m, 50) for h, m in models.items()}
    model = EnsembleUserSimilarity(weights, **taste)
    fused = model.combine(components, 10, models=models)
    options = {"affinity": model.affinity, "power": model.activity_power, "scale": model.activity_scale,
               "profile_weight": model.profile_weight, "few_views": model.few_views,
               "few_weights": model.few_views_weights, "few_affinity": model.few_views_affinity,
               "sharpen": model.sharpen}
    oracle = _brute_force_fusion(components, models, weights, 10, **options)
    assert fused.users.tolist() == sorted(oracle)
    for i, user in enumerate(fused.users.tolist()):
        expected = oracle[user]
        k = len(expected)
        assert fused.similar[i, :k].tolist() == [v for _, v, _ in expected] and (fused.similar[i, k:] == -1).all()
        np.testing.assert_allclose(fused.scores[i, :k], [-s for s, _, _ in expected], atol=1e-6)
        np.testing.assert_allclose(model.contributions_[i, :k], [p for _, _, p in expected], atol=1e-7)


@pytest.fixture(scope="module")
def default_run(small_tables):
    """The default ensemble's components fitted and listed on the small tables, and its answer."""
    models = {h: create_model(h).fit(small_tables) for h in DEFAULT_FUSED}
    components = {h: similar_users(m, 50) for h, m in models.items()}
    model = EnsembleUserSimilarity()
    return models, components, model.combine(components, 10, models=models), model.contributions_


@pytest.mark.parametrize("same", [{"sharpen": 1.0, "activity_scale": "log", "profile_weight": 0.0},
                                  {"few_views": 3}, {"few_views": 1_000, "few_views_weights": ensemble.DEFAULT_WEIGHTS,
                                                     "few_views_affinity": ensemble.DEFAULT_AFFINITY}],
                         ids=["neutral-options", "bucket-without-its-own-weights",
                              "everyone-light-with-the-same-weights"])
def test_neutral_options_give_the_default_answer_bit_for_bit(default_run, same):
    models, components, default, contributions = default_run
    model = EnsembleUserSimilarity(**same)
    answer = model.combine(components, 10, models=models)
    np.testing.assert_array_equal(answer.users, default.users)
    np.testing.assert_array_equal(answer.similar, default.similar)
    np.testing.assert_array_equal(answer.scores, default.scores)
    np.testing.assert_array_equal(model.contributions_, contributions)


@pytest.mark.parametrize("option", [{"profile_weight": 1.0}, {"activity_scale": "count"}, {"sharpen": 2.0},
                                    {"few_views": 3, "few_views_weights": {"tfidf_user_interest": 1.0}}])
def test_each_option_changes_the_answer(default_run, option):
    models, components, default, _ = default_run
    answer = EnsembleUserSimilarity(**option).combine(components, 10, models=models)
    assert not (np.array_equal(answer.similar, default.similar) and np.array_equal(answer.scores, default.scores))


@pytest.mark.parametrize("alpha", [0.5, 2.0, 4.0])
def test_sharpening_keeps_the_order_and_the_best_score_and_raises_the_ratios_to_the_power_alpha(default_run, alpha):
    models, components, default, _ = default_run
    model = EnsembleUserSimilarity(sharpen=alpha)
    answer = model.combine(components, 10, models=models)
    np.testing.assert_array_equal(answer.users, default.users)
    np.testing.assert_array_equal(answer.scores[:, 0], default.scores[:, 0])  # the best neighbour's score stays
    kept = answer.similar >= 0
    np.testing.assert_allclose(model.contributions_.sum(axis=2)[kept], answer.scores[kept], atol=1e-6)
    expected = default.scores[:, :1] * (default.scores / default.scores[:, :1]) ** alpha  # from the rounded scores
    same = (answer.similar == default.similar).all(axis=1)
    np.testing.assert_allclose(answer.scores[same & kept.all(axis=1)], expected[same & kept.all(axis=1)],
                               atol=1e-5 * max(1.0, alpha))
    # a row differs only where a tie of the rounded scores (before or after sharpening) is broken by the tie key
    # (both with their 11th neighbour: a tie broken there may bring it in)
    wider = {sharpen: EnsembleUserSimilarity(sharpen=sharpen).combine(components, 11, models=models).scores
             for sharpen in (1.0, alpha)}
    for i in np.flatnonzero(~same):
        j = int(np.flatnonzero(answer.similar[i] != default.similar[i])[0])
        a, d = wider[alpha][i], wider[1.0][i]
        assert ((j > 0 and (a[j] == a[j - 1] or d[j] == d[j - 1])) or a[j] == a[j + 1] or d[j] == d[j + 1]
                or (answer.similar[i, j] < 0 and expected[i, j] < 1e-6)), i


class FixedTaste(FixedVectors):
    """An ALS stand-in whose taste (users, unit factors, profiles, course counts) is given."""

    def __init__(self, users, courses) -> None:
        super().__init__(users, np.eye(len(users), 2))
        self.courses_ = np.asarray(courses, dtype=np.int64)

    def taste(self):
        return self.users_, self.vectors_, self.vectors_, self.courses_


def test_per_bucket_weights_by_hand():
    users = [1, 2, 3, 4]
    # users 1 and 2 have the same vectors; user 1 watched 1 course (light), user 2 five
    a = FixedVectors(users, [[1.0, 0.0], [1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    b = FixedVectors(users, [[0.0, 1.0], [0.0, 1.0], [0.6, 0.8], [0.28, 0.96]])
    models = {"a": a, "b": b, AFFINITY_MODEL: FixedTaste(users, [1, 5, 5, 5])}
    found = {h: similar_users(m, 3) for h, m in models.items() if h != AFFINITY_MODEL}
    found[AFFINITY_MODEL] = lists(users, np.full((4, 3), -1))  # lists nothing: its taste gives the counts
    model = EnsembleUserSimilarity({"a": 3.0, "b": 1.0}, affinity=0.0, activity_power=0.0,
                                   few_views=2, few_views_weights={"a": 0.0, "b": 1.0})
    answer = model.combine(found, 3, models=models)
    # user 1 (light): b alone, over 1: 2 -> 1.0, 4 -> 0.96, 3 -> 0.8
    np.testing.assert_array_equal(answer.similar[0], [2, 4, 3])
    np.testing.assert_allclose(answer.scores[0], [1.0, 0.96, 0.8], atol=1e-6)
    # user 2 (heavy): (3 cos_a + cos_b) / 4: 1 -> 1.0, 3 -> (1.8 + 0.8) / 4 = 0.65, 4 -> 0.96 / 4 = 0.24
    np.testing.assert_array_equal(answer.similar[1], [1, 3, 4])
    np.testing.assert_allclose(answer.scores[1], [1.0, 0.65, 0.24], atol=1e-6)
    assert model.explain(answer).for_row(1, 2)[1] == [("model", "a", 0.45), ("model", "b", 0.2)]
    # without the ALS model the buckets are unknown: refused, not guessed
    with pytest.raises(ValueError, match="few_views needs"):
        model.combine({h: found[h] for h in ("a", "b")}, 3, models={h: models[h] for h in ("a", "b")})


def test_component_params_fit_the_components_and_must_match_a_runs_models(small_tables, default_run):
    models, components, default, _ = default_run
    params = {"component_params": {AFFINITY_MODEL: {"factors": 64}}}
    own = create_model("ensemble_user_similarity", **params).fit(small_tables)
    assert own.component_models_[AFFINITY_MODEL].vectors_.shape[1] == 64
    assert own.component_models_["tfidf_user_interest"].get_params() == create_model("tfidf_user_interest").get_params()
    assert not np.array_equal(similar_users(own, 10).similar, default.similar)
    # fusing a run's models: its ALS model has 32 factors, not the 64 asked for
    with pytest.raises(ValueError, match="factors"):
        EnsembleUserSimilarity(**params).combine(components, 10, models=models)
    with pytest.raises(ValueError, match="does not fuse"):
        EnsembleUserSimilarity(component_params={"knn_collab_filtering_user_course_view": {"k1": 2.0}})


def test_every_tuning_variant_is_a_valid_ensemble():
    for params in EnsembleUserSimilarity.tuning_grid:
        assert EnsembleUserSimilarity(**params).get_params()  # refused parameters raise here
