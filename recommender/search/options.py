"""How the all-users search runs: exact, approximate (HNSW), or chosen by the number of users."""

from __future__ import annotations

from dataclasses import dataclass

SEARCH_METHODS = ("exact", "ann", "auto")
#: Vectors up to this many features go into the HNSW graph as they are; wider ones are reduced.
INDEX_MAX_FEATURES = 1024

#: ``auto`` searches exactly up to this many users of a model, with HNSW above.  Exact is
#: quadratic and HNSW about N log N, but building the graph has a high fixed cost: measured at
#: 100,000 users exact was still the faster (docs/benchmarks.md), so the switch sits above that.
AUTO_EXACT_MAX_USERS = 200_000


@dataclass(frozen=True)
class SearchOptions:
    """Settings of the search (generator flags / environment, see recommender/config.py)."""

    method: str = "exact"
    auto_exact_max_users: int = AUTO_EXACT_MAX_USERS
    #: Memory for the dense copy of low-dimensional vectors (exact search); tiles above it.
    dense_mb: int = 1024
    #: HNSW graph degree, build effort and query effort (faiss IndexHNSWFlat's M, efConstruction, efSearch).
    hnsw_m: int = 16
    hnsw_ef_construction: int = 100
    hnsw_ef: int = 64
    #: Dimensions of the dense representation (TruncatedSVD) built for wide sparse vectors.
    ann_dims: int = 256
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
            hnsw_ef=settings.hnsw_ef,
            recall_sample=settings.recall_sample_users,
        )

    def resolve(self, users: int, features: int = 0) -> str:
        """The method for a model of ``users`` users × ``features``: ``auto`` becomes exact or ann.

        ``auto`` keeps vectors wider than :data:`INDEX_MAX_FEATURES` exact at any size: the
        reduced representation the graph would need found too few of their neighbours, and their
        exact search is cheap (posting lists).  ``ann`` asked explicitly still tries, and the recall check
        stops the run.
        """
        if self.method == "auto":
            return "exact" if users <= self.auto_exact_max_users or features > INDEX_MAX_FEATURES else "ann"
        return self.method
