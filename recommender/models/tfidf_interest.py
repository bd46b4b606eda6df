"""``tfidf_user_interest``: users are documents of their interest tags, compared by TF-IDF cosine.

Each tag is one token by construction (the matrix is user × tag, never tokenised text), so
``c#``, ``.net``, ``node.js`` and ``3d-modeling`` stay whole.  A tag followed twice is still one
interest, hence binary term frequency; IDF down-weights the tags everybody follows, which is
what makes two users who share a rare tag more alike than two who share ``javascript``.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfTransformer
from typing import Self

from recommender.data.loader import Tables
from recommender.features.matrices import user_item_matrix
from recommender.models.base import SimilarityModel
from recommender.reasons import Explanations, shared_features
from recommender.search.neighbours import Neighbours


class TfidfUserInterest(SimilarityModel):
    tuning_grid = [{}, {"min_df": 2}, {"min_df": 5}, {"min_df": 20}, {"smooth_idf": False}, {"sublinear_tf": True}]
    tuning_target = ("interests", "ndcg_at_{k}")

    def __init__(self, min_df: int = 1, sublinear_tf: bool = False, smooth_idf: bool = True) -> None:
        self.min_df, self.sublinear_tf, self.smooth_idf = min_df, sublinear_tf, smooth_idf

    def fit(self, tables: Tables) -> Self:
        counts = user_item_matrix(tables.user_interests, "user_handle", "interest_tag", binary=True)
        matrix = counts.matrix
        users, tags = counts.users, counts.items
        if self.min_df > 1:
            keep = (matrix.getnnz(axis=0) >= self.min_df).nonzero()[0]
            matrix, tags = matrix[:, keep], tags[keep]
            # A user whose every tag was too rare has no vector left: absent, like a user without data.
            rows = (matrix.getnnz(axis=1) > 0).nonzero()[0]
            matrix, users = matrix[rows], users[rows]
        if matrix.shape[1] == 0:  # nothing left to compare on
            matrix, users = matrix[:0], users[:0]
            self.vectors_ = matrix.tocsr()
        else:
            transformer = TfidfTransformer(norm="l2", sublinear_tf=self.sublinear_tf, smooth_idf=self.smooth_idf)
            self.vectors_ = transformer.fit_transform(matrix).tocsr()
        self.users_ = users
        self.tags_ = tags
        return self

    def explain(self, neighbours: Neighbours) -> Explanations:
        """The shared tags with the largest contribution to the cosine."""
        return shared_features(self.vectors_, self.users_, neighbours, self.tags_, "tag")
