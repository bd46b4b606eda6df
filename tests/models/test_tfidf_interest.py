from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from recommender.data.loader import Tables
from recommender.models.tfidf_interest import TfidfUserInterest
from recommender.search.options import SearchOptions
from recommender.topk import similar_users
from tests.test_topk import assert_matches


def tables_with_interests(rows: list[tuple[int, str]]) -> Tables:
    interests = pd.DataFrame(rows, columns=["user_handle", "interest_tag"]).assign(date_followed=pd.Timestamp("2017-01-01"))
    empty = pd.DataFrame()
    return Tables(interests, empty, empty, empty)


def test_tags_stay_whole_tokens():
    model = TfidfUserInterest().fit(tables_with_interests([(1, "c#"), (1, ".net"), (2, "node.js"), (3, "3d-modeling"), (3, "c")]))
    assert sorted(model.tags_.tolist()) == [".net", "3d-modeling", "c", "c#", "node.js"]


def test_rare_shared_tag_beats_common_shared_tag():
    rows = [(u, "javascript") for u in range(1, 40)] + [(1, "haskell"), (2, "haskell"), (1, "css"), (3, "css")]
    rows += [(3, "javascript")] + [(u, "css") for u in (4, 5, 6)]  # css is followed by 5, haskell by 2
    result = similar_users(TfidfUserInterest().fit(tables_with_interests(rows)), 3)
    first = dict(zip(result.users.tolist(), result.similar[:, 0].tolist()))
    assert first[1] == 2  # shares the rare "haskell"


def test_matches_brute_force_cosine_on_its_vectors(small_tables):
    model = TfidfUserInterest().fit(small_tables)
    vectors, users = model.user_vectors()
    assert_matches(similar_users(model, 10, search=SearchOptions(block_mb=1)), vectors, users, 10)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        similar_users(TfidfUserInterest(), 10)


def test_min_df_drops_rare_tags(small_tables):
    full = TfidfUserInterest().fit(small_tables)
    pruned = TfidfUserInterest(min_df=5).fit(small_tables)
    assert pruned.vectors_.shape[1] < full.vectors_.shape[1]
    assert np.array_equal(pruned.users_, full.users_)
