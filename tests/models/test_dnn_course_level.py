"""The Keras model: trains, is deterministic, and its embeddings carry the users' level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.models.dnn_course_level import DnnUserCourseLevel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fitted(small_tables):
    return DnnUserCourseLevel(epochs=8, seed=3).fit(small_tables)


def test_trains_with_validation_and_covers_every_viewer(fitted, small_tables):
    assert "val_loss" in fitted.history_ and 1 <= len(fitted.history_["loss"]) <= 8
    assert fitted.history_["loss"][-1] < fitted.history_["loss"][0]
    assert set(fitted.users_) == set(small_tables.user_course_views["user_handle"])
    assert fitted.vectors_.shape == (len(fitted.users_), 32)


def test_same_seed_same_embeddings(fitted, small_tables):
    again = DnnUserCourseLevel(epochs=8, seed=3).fit(small_tables)
    np.testing.assert_allclose(again.vectors_, fitted.vectors_, rtol=0, atol=1e-6)


def test_neighbours_share_skill_level_more_than_chance(fitted, small_dataset):
    truth = pd.read_csv(small_dataset / "ground_truth.csv").set_index("user_handle")["skill"]
    result = fitted.similar_users(10)
    valid = result.similar >= 0
    same = truth.reindex(result.similar[valid]).to_numpy() == np.repeat(truth.reindex(result.users).to_numpy(), valid.sum(axis=1))
    chance = float((truth.value_counts(normalize=True) ** 2).sum())
    assert same.mean() > chance + 0.15, (same.mean(), chance)
