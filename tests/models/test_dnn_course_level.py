"""The Keras model: trains, is deterministic, and its embeddings carry the users' level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.models.dnn_course_level import DnnUserCourseLevel
from recommender.topk import similar_users

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


def _assert_neighbours_share_skill_level_more_than_chance(model: DnnUserCourseLevel, dataset) -> None:
    truth = pd.read_csv(dataset / "ground_truth.csv").set_index("user_handle")["skill"]
    result = similar_users(model, 10)
    valid = result.similar >= 0
    same = truth.reindex(result.similar[valid]).to_numpy() == np.repeat(truth.reindex(result.users).to_numpy(), valid.sum(axis=1))
    chance = float((truth.value_counts(normalize=True) ** 2).sum())
    assert same.mean() > chance + 0.15, (same.mean(), chance)


def test_neighbours_share_skill_level_more_than_chance(fitted, small_dataset):
    _assert_neighbours_share_skill_level_more_than_chance(fitted, small_dataset)


def test_batch_size_is_the_configured_one_up_to_the_step_cap_then_grows():
    model = DnnUserCourseLevel()  # batch 1,024, at most 256 steps an epoch
    assert model.batch_size_for(1) == 1024
    assert model.batch_size_for(256 * 1024) == 1024  # the default 10,000-user data has 81,770 training pairs
    assert model.batch_size_for(256 * 1024 + 1) == 1025
    for rows in (300_000, 822_656, 8_194_232):
        batch = model.batch_size_for(rows)
        assert -(-rows // batch) <= 256 < -(-rows // (batch - 1))  # the smallest batch within the cap
    assert DnnUserCourseLevel(batch_size=64, max_steps_per_epoch=10).batch_size_for(1000) == 100


def test_small_data_keeps_the_configured_batch_and_dense_adam(fitted):
    assert fitted.batch_size_ == 1024 and fitted.row_sparse_ is False


@pytest.fixture(scope="module")
def fitted_grown(small_tables):
    """A step cap small enough that the test data takes the large-data path: grown batch, row-sparse Adam."""
    return DnnUserCourseLevel(epochs=8, seed=3, batch_size=64, max_steps_per_epoch=8).fit(small_tables)


def test_large_data_path_grows_the_batch_and_is_deterministic(fitted_grown, small_tables):
    assert fitted_grown.batch_size_ > 64 and fitted_grown.row_sparse_ is True
    train_rows = int(fitted_grown.training_pairs_ * 0.9)
    assert -(-train_rows // fitted_grown.batch_size_) <= 8
    again = DnnUserCourseLevel(epochs=8, seed=3, batch_size=64, max_steps_per_epoch=8).fit(small_tables)
    np.testing.assert_array_equal(again.vectors_, fitted_grown.vectors_)


def test_large_data_path_neighbours_share_skill_level_more_than_chance(fitted_grown, small_dataset):
    _assert_neighbours_share_skill_level_more_than_chance(fitted_grown, small_dataset)
