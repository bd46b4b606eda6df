"""How the all-users search runs: exact, approximate (faiss IVF + exact re-ranking), or chosen by the number of users."""

from __future__ import annotations

from dataclasses import dataclass

from scipy import sparse

SEARCH_METHODS = ("exact", "ann", "auto")

#: ``auto`` searches exactly up to this many users of a model, approximately above.  Exact
#: answers need no recall check and the interest tags have no approximate search that keeps
#: recall@10 at 0.95 (docs/search.md); the exact search is quadratic, so the switch sits where it
#: still costs a few minutes a model (twice the 100,000 users of the scale benchmark).
AUTO_EXACT_MAX_USERS = 200_000
#: ... and above it still exactly the sparse vectors whose posting-list search costs at most this
#: many accumulations per user (:func:`~recommender.search.exact.postings_per_user`): such a search
#: grows about linearly with the users and needs no recall check.
AUTO_EXACT_MAX_POSTINGS = 200_000


@dataclass(frozen=True)
class SearchOptions:
    """Settings of the search (generator flags / environment, see recommender/config.py)."""

    method: str = "exact"
    auto_exact_max_users: int = AUTO_EXACT_MAX_USERS
    #: Memory for the dense copy of low-dimensional vectors (exact search); tiles above it.
    dense_mb: int = 1024
    #: Candidates per user re-ranked by exact cosine: dense vectors, sparse (projected) ones.
    ann_candidates: int = 100
    ann_sparse_candidates: int = 300
    #: IVF cells probed per query, and cells per sqrt(users) (nlist ~ this × sqrt(users)).
    ann_nprobe: int = 16
    ann_cells_per_sqrt: float = 4.0
    #: Dimensions of the projection (seeded TruncatedSVD) of sparse vectors and wide dense ones.
    ann_dims: int = 64
    #: Users sampled to measure the approximate search's recall@10 against exact search.
    recall_sample: int = 2000
    seed: int = 7

    def __post_init__(self) -> None:
        if self.method not in SEARCH_METHODS:
            raise ValueError(f"search method {self.method!r} is not one of {', '.join(SEARCH_METHODS)}")

    @classmethod
    def from_settings(cls, settings: object, method: str | None = None) -> SearchOptions:
        """The options of a generator run: its settings (``GeneratorSettings``), ``method`` from ``--search``.

        Where the search runs (this machine or Dask) is not an option of the search: the pipeline's
        executor (:mod:`recommender.executor`) runs it."""
        return cls(
            method=method or settings.search,
            auto_exact_max_users=settings.auto_exact_max_users,
            dense_mb=settings.search_dense_mb,
            ann_candidates=settings.ann_candidates,
            ann_sparse_candidates=settings.ann_sparse_candidates,
            ann_nprobe=settings.ann_nprobe,
            ann_dims=settings.ann_dims,
            recall_sample=settings.recall_sample_users,
        )

    def method_for(self, vectors: object) -> str:
        """The method for one model's vectors (one row per user): :meth:`resolve` with their posting-list cost."""
        cost = None
        if self.method == "auto" and sparse.issparse(vectors):  # the posting-list cost decides above the size threshold
            from recommender.search.exact import postings_per_user  # numba only when searching

            cost = postings_per_user(vectors)
        return self.resolve(vectors.shape[0], cost)

    def resolve(self, users: int, postings_per_user: float | None = None) -> str:
        """The method for a model of ``users`` users: ``auto`` becomes exact or ann.

        Exact up to ``auto_exact_max_users``; above it approximate, except sparse vectors whose
        posting-list search stays cheap (``postings_per_user`` at most :data:`AUTO_EXACT_MAX_POSTINGS`).
        """
        if self.method == "auto":
            if users <= self.auto_exact_max_users:
                return "exact"
            cheap = postings_per_user is not None and postings_per_user <= AUTO_EXACT_MAX_POSTINGS
            return "exact" if cheap else "ann"
        return self.method
