"""``knn_collab_filtering_user_assessment_score``: users who took the same assessments and scored alike.

Raw scores do not compare across assessments: 150 on a hard assessment can be a better result
than 250 on an easy one.  So each score is first normalised *within its assessment tag*, to the
user's percentile among everyone who took that tag (``normalisation="percentile"``, mid-rank, so a
tag's takers spread evenly over (0, 1)), or to the normal CDF of the per-tag z-score
(``"zscore"``, which keeps distances between scores but assumes a bell shape).

Two representations (``representation``):

``"per_tag"``: each (user, tag) becomes two non-negative coordinates ``w·(cos θ, sin θ)`` with
``θ = p·π/2`` for percentile ``p`` (not the centred score itself: a cosine over z-scores is
negative for two users on opposite sides of the mean and ±1 for the many users who took one
assessment).  Two users who took the same tag contribute ``w_a·w_b·cos(θ_a − θ_b)``; taking
different assessments contributes nothing.  On held-out assessment tags it ranked *below random
users*: the closest users are those whose assessments are a subset of the user's (one shared tag
at the same level is a cosine of 1), who have no other assessment to bring.

``"topic_level"`` (default): a user is *what* they took times *how well*.  What: the taken tags
(``w`` each) plus ``smoothing`` × the tags taken *together* with them by other users (the user's
row times the tag × tag cosine of co-taking, diagonal 0, each part of unit length), so that users
who took related assessments are close without sharing one.  How well: one angle ``θ_u`` from the
user's mean percentile.  The vector is ``(topic·cos θ_u, topic·sin θ_u)``, so the cosine of two
users is *cos(topics) × cos(θ_u − θ_v)*: same topic at the same level is 1, the very best vs the
very worst is 0.  Held-out-tag NDCG@10 doubled on the validation split (0.021 → 0.043) and went
from 0.041 to 0.158 on test, skill precision from 0.508 to 0.539 (docs/evaluation/).  The tag × tag matrix is tags × tags (54 here).

``interests`` (default 5): the user's TF-IDF interest vector (:mod:`recommender.models.tfidf_interest`,
unit length) is appended to the unit assessment vector, times ``interests``, so the cosine is
``(cos_assessments + interests² · cos_interests) / (1 + interests²)`` for users who follow topics
(users without an interest keep the assessment part alone).  Why: most takers took one or two
assessments (54 tags in all), so the assessment vector alone finds many users at cosine ~1 whose
assessments are a subset of the user's and who have no other assessment to bring (below random
users on held-out assessment tags); what a user follows says which assessment comes next.
The weight was chosen on the validation split (docs/evaluation/tuning.md: 0, 1, 2, 3, 5, 10, and
the interests alone among takers).  Neighbours are still only users who took an assessment: a user
who took none has none to bring.

``w`` is 1, or the tag's IDF with ``idf=True`` (sharing a rare assessment counts more).
A user's repeated attempts at one tag are averaged first.  The reasons are the tags both users
*took* (never a tag only the smoothing brings), weighted by their part of the cosine.

Covers only the users who took an assessment (~31% of the default data); the reasons are the
shared assessments (a neighbour found through interests alone gets none from this model).
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import ndtr
from sklearn.preprocessing import normalize

from recommender.data.loader import Tables
from recommender.models.base import SimilarityModel
from recommender.reasons import Explanations, shared_features
from recommender.search.neighbours import Neighbours

Normalisation = Literal["percentile", "zscore"]
Representation = Literal["topic_level", "per_tag"]


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
    # Chosen on the validation split (docs/evaluation/tuning.md).
    tuning_grid = [
        {},
        {"interests": 0.0},  # the assessments alone: the model before the interests
        {"interests": 0.0, "representation": "per_tag", "idf": False},
        {"interests": 1.0},
        {"interests": 2.0},
        {"interests": 3.0},
        {"interests": 10.0},
        {"interests": 1000.0},  # the interests alone, among the takers
        {"smoothing": 0.0},
        {"idf": False},
        {"normalisation": "zscore"},
    ]
    tuning_target = ("assessments", "ndcg_at_{k}")

    def __init__(self, normalisation: Normalisation = "percentile", idf: bool = True,
                 representation: Representation = "topic_level", smoothing: float = 3.0,
                 interests: float = 5.0) -> None:
        if normalisation not in ("percentile", "zscore"):
            raise ValueError(f"normalisation must be percentile or zscore, not {normalisation!r}")
        if representation not in ("topic_level", "per_tag"):
            raise ValueError(f"representation must be topic_level or per_tag, not {representation!r}")
        if smoothing < 0:
            raise ValueError("smoothing must be >= 0")
        if interests < 0:
            raise ValueError("interests must be >= 0")
        self.normalisation, self.idf, self.representation = normalisation, idf, representation
        self.smoothing, self.interests = smoothing, interests

    def fit(self, tables: Tables) -> Self:
        pairs = tag_percentiles(tables.user_assessment_scores, self.normalisation)
        users, rows = np.unique(pairs["user_handle"].to_numpy(dtype=np.int64), return_inverse=True)
        tag_codes, tags = pd.factorize(pairs["assessment_tag"], sort=True)
        weight = np.ones(len(pairs))
        if self.idf:
            takers = np.bincount(tag_codes, minlength=len(tags))
            weight = (np.log((1.0 + len(users)) / (1.0 + takers)) + 1.0)[tag_codes]
        position = pairs["position"].to_numpy()
        shape = (len(users), len(tags))
        if self.representation == "per_tag":
            theta = position * (np.pi / 2.0)
            cos, sin = (sparse.csr_matrix((weight * f(theta), (rows, tag_codes)), shape=shape) for f in (np.cos, np.sin))
        else:
            taken = sparse.csr_matrix((weight, (rows, tag_codes)), shape=shape)
            together = normalize(taken.tocsc(), axis=0)
            related = sparse.csr_matrix(together.T @ together)
            related.setdiag(0.0)
            topic = normalize(taken) + self.smoothing * normalize(sparse.csr_matrix(taken @ related))
            theta = np.bincount(rows, weights=position) / np.bincount(rows) * (np.pi / 2.0)
            cos, sin = (sparse.diags(f(theta)) @ topic for f in (np.cos, np.sin))
        # Column 2j is tag j's cos part, 2j + 1 its sin part; the interests follow (module docstring).
        vectors = sparse.hstack([cos, sin]).tocsc()[:, np.argsort(np.r_[2 * np.arange(len(tags)), 2 * np.arange(len(tags)) + 1])]
        self.assessment_columns_ = 2 * len(tags)
        self.vectors_ = sparse.csr_matrix(sparse.hstack([normalize(sparse.csr_matrix(vectors)),
                                                         self.interests * self._interest_rows(tables, users)]))
        self.vectors_.eliminate_zeros()
        self.taken_ = sparse.csr_matrix((np.ones(len(rows)), (rows, tag_codes)), shape=shape)
        self.positions_ = position
        self.users_ = users
        self.tags_ = np.asarray(tags)
        return self

    def _interest_rows(self, tables: Tables, users: np.ndarray) -> sparse.csr_matrix:
        """The TF-IDF interest vector of each of ``users`` (empty rows without interests, or with weight 0)."""
        frame = tables.user_interests
        if self.interests == 0 or not len(frame) or "interest_tag" not in frame.columns:
            return sparse.csr_matrix((len(users), 0))
        from recommender.models.tfidf_interest import TfidfUserInterest

        tfidf = TfidfUserInterest().fit(tables)
        vectors, interest_users = tfidf.user_vectors()
        at = np.minimum(np.searchsorted(interest_users, users), max(len(interest_users) - 1, 0))
        found = (at < len(interest_users)) & (interest_users[at] == users) if len(interest_users) else np.zeros(len(users), bool)
        pick = sparse.csr_matrix((np.ones(int(found.sum())), (np.flatnonzero(found), at[found])),
                                 shape=(len(users), len(interest_users)))
        return sparse.csr_matrix(pick @ vectors)

    def explain(self, neighbours: Neighbours) -> Explanations:
        """The assessment tags both users took, by their part of the cosine (a tag's two coordinates added)."""
        feature_of_column = np.arange(2 * len(self.tags_)) // 2
        took = self.vectors_[:, :self.assessment_columns_].multiply(self.taken_[:, feature_of_column] > 0)
        norms = np.sqrt(np.asarray(self.vectors_.multiply(self.vectors_).sum(axis=1)).ravel())
        return shared_features(took, self.users_, neighbours, self.tags_, "assessment",
                               feature_of_column=feature_of_column, row_norms=norms)
