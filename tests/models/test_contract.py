"""The contract every registered model keeps (in the spirit of ``implicit``'s recommender test mixin).

Parametrised over the registry, so a new model is held to it by adding its registry line: fitted
on small tables it must be deterministic, never list a user as their own neighbour, list only
positive similarities best first with ties broken by the seeded tie key of the pair, answer only for users that have
data in the tables it reads, and search without an N×N matrix.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from recommender.models.registry import MODEL_HANDLES, create_model, get_spec
from recommender.search.options import SearchOptions
from recommender.search.selection import tie_key
from recommender.topk import similar_users

N = 10


@pytest.fixture(scope="module")
def contract_tables(tmp_path_factory):
    from recommender.data.loader import load_tables
    from recommender_tools.datagen import generate

    out = tmp_path_factory.mktemp("contract")
    generate(out, users=2000, seed=3, communities=8)
    return load_tables(out)


# Fitting these trains a TensorFlow model: the slow lane (pyproject's ``slow`` marker).
TENSORFLOW_MODELS = {"dnn_collab_filtering_user_course_level"}


@pytest.fixture(scope="module", params=[pytest.param(h, marks=pytest.mark.slow) if h in TENSORFLOW_MODELS else h
                                        for h in MODEL_HANDLES])
def fitted(request, contract_tables):
    handle = request.param
    return handle, create_model(handle).fit(contract_tables), create_model(handle).fit(contract_tables)


def test_deterministic(fitted):
    _, first, second = fitted
    a, b = similar_users(first, N), similar_users(second, N)
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.similar, b.similar)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_lists_are_positive_best_first_ties_by_the_tie_key_and_never_self(fitted):
    _, model, _ = fitted
    answer = similar_users(model, N)
    assert answer.covered > 0
    for user, ids, scores in answer.rows():
        assert user not in ids and len(set(ids)) == len(ids) <= N
        assert all(s > 0 for s in scores)
        ties = tie_key(np.full(len(ids), user), np.asarray(ids, dtype=np.int64))
        for (t1, s1), (t2, s2) in zip(zip(ties, scores), zip(ties[1:], scores[1:])):
            assert s1 > s2 or (s1 == s2 and t1 < t2), (user, ids, scores)


def test_only_users_with_data_in_the_models_tables(fitted, contract_tables):
    handle, model, _ = fitted
    answer = similar_users(model, N)
    with_data = set().union(*(getattr(contract_tables, t)["user_handle"].tolist() for t in get_spec(handle).tables))
    listed = {u for u, _, _ in answer.rows()} | {n for _, ids, _ in answer.rows() for n in ids}
    assert listed <= with_data
    assert len(with_data) < 2000 or set(answer.users.tolist()) <= with_data


def test_search_memory_is_far_below_an_n_by_n_matrix(fitted):
    _, model, _ = fitted
    users = len(similar_users(model, N).users)
    tracemalloc.start()
    try:
        similar_users(model, N, search=SearchOptions(block_mb=1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full = users * users * 4  # one float32 N×N similarity matrix
    # A model covering few users (the assessment model: ~620 here) has an N×N matrix about the size of
    # the search's 1 MB block budget; then the budget is the bound: two workers' blocks of scores, each
    # with the selection's temporaries (about as much again), plus the vectors' dense copy (counted
    # twice: the copy and the queries gathered from it).  That model is held to N×N / 4 on 6,000 users
    # in tests/models/test_knn_assessment_score.py.
    if full > 8 * 2**20:
        bound = full / 4
    else:
        vectors, _ = model.user_vectors()
        bound = 4 * 2**20 + 2 * 4 * vectors.shape[0] * vectors.shape[1]
    assert peak < bound, f"peak {peak / 2**20:.1f} MB for {users} users (N×N would be {full / 2**20:.1f} MB)"


def test_reasons_are_few_positive_and_name_something(fitted):
    _, model, _ = fitted
    answer = similar_users(model, N)
    explanations = model.explain(answer)
    assert explanations is not None
    assert explanations.index.shape == (*answer.similar.shape, 3)
    listed = answer.similar >= 0
    assert (explanations.index[~listed] == -1).all()
    given = explanations.index >= 0
    assert given.any() and (explanations.weight[given] > 0).all()
    assert (explanations.index[given] < len(explanations.names)).all()
    # strongest first
    assert (np.diff(np.where(given, explanations.weight, 0), axis=2) <= 1e-9).all()
