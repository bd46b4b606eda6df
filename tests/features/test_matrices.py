from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.features.matrices import user_item_matrix


def test_values_are_summed_per_user_and_item_and_rows_sorted_by_user():
    frame = pd.DataFrame(
        {"user": [5, 2, 5, 2, 9], "item": ["b", "a", "b", "c", "a"], "t": [10.0, 1.0, 5.0, 2.0, 3.0]}
    )
    m = user_item_matrix(frame, "user", "item", "t")
    assert m.users.tolist() == [2, 5, 9]
    assert m.items.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(m.matrix.toarray(), [[1, 0, 2], [0, 15, 0], [3, 0, 0]])


def test_binary_keeps_presence_only():
    frame = pd.DataFrame({"user": [1, 1, 1], "item": ["x", "x", "y"]})
    m = user_item_matrix(frame, "user", "item", binary=True)
    np.testing.assert_array_equal(m.matrix.toarray(), [[1, 1]])
