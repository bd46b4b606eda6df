"""``knn_collab_filtering_user_assessment_score``: users who took the same assessments and scored alike.

Raw scores do not compare across assessments: 150 on a hard assessment can be a better result
than 250 on an easy one.  So each score is first normalised *within its assessment tag*, to the
user's percentile among everyone who took that tag (``normalisation="percentile"``, mid-rank, so a
tag's takers spread evenly over (0, 1)), or to the normal CDF of the per-tag z-score
(``"zscore"``, which keeps distances between scores but assumes a bell shape).

Why not put the normalised score itself in the matrix: a cosine over centred scores (z-scores) is
*negative* for two users on opposite sides of the mean and, for the many users who took one
assessment, always ±1.  Instead each (user, tag) becomes two non-negative coordinates,
``w·(cos θ, sin θ)`` with ``θ = p·π/2`` for percentile ``p``: two users who took the same tag
contribute ``w_a·w_b·cos(θ_a − θ_b)`` to the dot product, the full weight at the same percentile
and 0 between the very best and the very worst.  Similarity therefore stays ≥ 0 and means "took
the same assessments at a similar level"; taking different assessments contributes nothing.
``w`` is 1, or the tag's IDF with ``idf=True`` (sharing a rare assessment counts more).
A user's repeated attempts at one tag are averaged first.

Covers only the users who took an assessment (~31% of the default data).
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import ndtr

from recommender.data.loader import Tables
from recommender.models.base import SimilarityModel
from recommender.reasons import Explanations, shared_features
from recommender.topk import Neighbours

Normalisation = Literal["percentile", "zscore"]


def tag_percentiles(frame: pd.DataFrame, normalisation: Normalisation = "percentile") -> pd.DataFrame:
    """One row per (user_handle, assessment_tag): mean score and its within-tag position in (0, 1)."""
    pairs = (
        frame.groupby(["user_handle", "assessment_tag"], sort=True, observed=True)["user_assessment_score"]
        .mean()
        .rename("score")
        .reset_index()
    )
    by_tag = pairs.groupby("assessment_tag", sort=False, observed=True)["score"]
    if normalisation == "percentile":
        takers = by_tag.transform("size").to_numpy(dtype=np.float64)
        pairs["position"] = (by_tag.rank(method="average").to_numpy() - 0.5) / takers
    else:
        std = by_tag.transform("std").fillna(0.0).to_numpy()
        centred = pairs["score"].to_numpy() - by_tag.transform("mean").to_numpy()
        pairs["position"] = ndtr(np.divide(centred, std, out=np.zeros_like(centred), where=std > 0))
    return pairs


class KnnUserAssessmentScore(SimilarityModel):
    tuning_grid = [{}, {"normalisation": "zscore"}, {"idf": True}]
    tuning_target = ("assessments", "ndcg_at_{k}")

    def __init__(self, normalisation: Normalisation = "percentile", idf: bool = False) -> None:
        super().__init__()
        if normalisation not in ("percentile", "zscore"):
            raise ValueError(f"normalisation must be percentile or zscore, not {normalisation!r}")
        self._keep_params(locals())

    def fit(self, tables: Tables) -> Self:
        pairs = tag_percentiles(tables.user_assessment_scores, self.normalisation)
        users, rows = np.unique(pairs["user_handle"].to_numpy(dtype=np.int64), return_inverse=True)
        tag_codes, tags = pd.factorize(pairs["assessment_tag"], sort=True)
        weight = np.ones(len(pairs))
        if self.idf:
            takers = np.bincount(tag_codes, minlength=len(tags))
            weight = (np.log((1.0 + len(users)) / (1.0 + takers)) + 1.0)[tag_codes]
        theta = pairs["position"].to_numpy() * (np.pi / 2.0)
        self.positions_ = pairs["position"].to_numpy()
        self.vectors_ = sparse.csr_matrix(
            (
                np.concatenate([weight * np.cos(theta), weight * np.sin(theta)]),
                (np.concatenate([rows, rows]), np.concatenate([2 * tag_codes, 2 * tag_codes + 1])),
            ),
            shape=(len(users), 2 * len(tags)),
        )
        self.vectors_.eliminate_zeros()
        self.users_ = users
        self.tags_ = np.asarray(tags)
        return self

    def explain(self, neighbours: Neighbours) -> Explanations:
        """The shared assessment tags with the largest contribution (a tag's two coordinates added)."""
        feature_of_column = np.arange(2 * len(self.tags_)) // 2
        return shared_features(self.vectors_, self.users_, neighbours, self.tags_, "assessment",
                               feature_of_column=feature_of_column)
