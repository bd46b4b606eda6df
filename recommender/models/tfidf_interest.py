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


class TfidfUserInterest(SimilarityModel):
    handle = "tfidf_user_interest"
    tables = ("user_interests",)

    def __init__(self, min_df: int = 1, sublinear_tf: bool = False, smooth_idf: bool = True) -> None:
        super().__init__()
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.smooth_idf = smooth_idf

    def fit(self, tables: Tables) -> Self:
        counts = user_item_matrix(tables.user_interests, "user_handle", "interest_tag", binary=True)
        matrix = counts.matrix
        if self.min_df > 1:
            keep = (matrix.getnnz(axis=0) >= self.min_df).nonzero()[0]
            matrix = matrix[:, keep]
        transformer = TfidfTransformer(norm="l2", sublinear_tf=self.sublinear_tf, smooth_idf=self.smooth_idf)
        self.vectors_ = transformer.fit_transform(matrix).tocsr()
        self.users_ = counts.users
        self.tags_ = counts.items
        return self
