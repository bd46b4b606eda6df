from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.evaluation.split import TASKS, holdout_count, split_tables, temporal_holdout


def views(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_handle", "course_id", "view_date"])
    frame["view_date"] = pd.to_datetime(frame["view_date"])
    return frame


@pytest.mark.parametrize(
    "n, held", [(0, 0), (1, 0), (2, 1), (3, 1), (5, 1), (7, 1), (8, 2), (10, 2), (13, 3), (100, 20)]
)
def test_holdout_count_rounds_half_up_keeps_one_in_training(n, held):
    assert holdout_count(np.array([n]))[0] == held


def test_latest_courses_by_first_view_are_held_out_per_user():
    frame = views([
        # user 1: five courses; "a" is viewed again late, but its first view is the earliest
        (1, "a", "2017-01-01"), (1, "b", "2017-01-02"), (1, "c", "2017-01-03"),
        (1, "d", "2017-01-04"), (1, "e", "2017-01-05"), (1, "a", "2017-02-01"),
        # user 2: one course, kept
        (2, "a", "2017-03-01"), (2, "a", "2017-03-02"),
        # user 3: two courses, the later one held out with all its rows
        (3, "x", "2017-01-09"), (3, "y", "2017-01-01"), (3, "x", "2017-01-10"),
    ])
    result = temporal_holdout(frame, "course_id", "view_date")
    held = set(zip(result.heldout["user_handle"], result.heldout["course_id"]))
    assert held == {(1, "e"), (3, "x")}
    train = set(zip(result.train["user_handle"], result.train["course_id"]))
    assert not held & train
    assert len(result.train) == len(frame) - 3  # (1, e) once, (3, x) twice
    assert (result.train["course_id"] == "a").sum() == 4  # user 1's late re-view of "a" stays


def test_ties_at_the_cut_are_broken_by_the_seed_not_the_name():
    frame = views([(u, c, "2017-01-01") for u in range(1, 201) for c in ("a", "b")])
    held = temporal_holdout(frame, "course_id", "view_date", seed=3).heldout
    assert len(held) == 200
    assert 60 < (held["course_id"] == "a").sum() < 140
    again = temporal_holdout(frame, "course_id", "view_date", seed=3).heldout
    pd.testing.assert_frame_equal(held, again)


@pytest.mark.parametrize("task", list(TASKS.values()), ids=list(TASKS))
def test_split_of_real_shaped_tables_is_by_time_and_per_user(small_tables, task):
    train_tables, heldout = split_tables(small_tables, task)
    full = getattr(small_tables, task.table)
    train = getattr(train_tables, task.table)
    first = full.groupby(["user_handle", task.item_col])[task.date_col].min().reset_index()
    n_items = first.groupby("user_handle").size()
    held_per_user = heldout.groupby("user_handle").size().reindex(n_items.index, fill_value=0)
    np.testing.assert_array_equal(held_per_user.to_numpy(), holdout_count(n_items.to_numpy()))
    # No held-out (user, item) in training, and every training row is an original row.
    merged = train.merge(heldout[["user_handle", task.item_col]], how="inner")
    assert merged.empty
    assert len(train) + len(full.merge(heldout[["user_handle", task.item_col]])) == len(full)
    # Held-out items are the latest: none starts before any of the user's training items.
    train_first = train.groupby("user_handle")[task.date_col].min()
    train_last_first = (
        train.groupby(["user_handle", task.item_col])[task.date_col].min().groupby("user_handle").max()
    )
    held_earliest = heldout.groupby("user_handle")[task.date_col].min()
    assert (held_earliest >= train_last_first.reindex(held_earliest.index)).all()
    assert train_first.index.isin(full["user_handle"]).all()
    # The other tables are untouched.
    for other in TASKS.values():
        if other.table != task.table:
            assert getattr(train_tables, other.table) is getattr(small_tables, other.table)
