"""How the all-users search runs: exact, approximate (a cluster index for sparse vectors, faiss IVF + exact
re-ranking for dense ones), or chosen by the number of users and a pilot of the recall.

Every default that is a setting is the setting's own default (:class:`~recommender.config.GeneratorSettings`,
where it is declared once with its range and meaning), so a search built without the settings (a
test, the evaluation, a benchmark) runs as the generator does by default."""

from __future__ import annotations

from dataclasses import dataclass
from recommender.config import GeneratorSettings, generator_default

SEARCH_METHODS = ("exact", "ann", "auto")

#: ``auto`` searches exactly up to this many users of a model, approximately above (where the
#: approximate search reaches ``min_recall``: else exactly).  The exact search is quadratic in the
#: users, so the switch sits where it still costs a few minutes a model (docs/search.md).
AUTO_EXACT_MAX_USERS: int = generator_default("auto_exact_max_users")


@dataclass(frozen=True)
class SearchOptions:
    """Settings of the search (generator flags / environment, see recommender/config.py)."""

    method: str = "exact"
    auto_exact_max_users: int = AUTO_EXACT_MAX_USERS
    #: Memory budget (MB) of one block of scores of the exact search.
    block_mb: int = generator_default("topk_block_mb")
    #: Memory for the dense copy of low-dimensional vectors (exact search); tiles above it.
    dense_mb: int = generator_default("search_dense_mb")
    #: Candidates per user re-ranked by exact cosine (dense vectors).
    ann_candidates: int = generator_default("ann_candidates")
    #: IVF cells probed per query, and cells per sqrt(users) (nlist ~ this × sqrt(users)).
    ann_nprobe: int = generator_default("ann_nprobe")
    ann_cells_per_sqrt: float = 4.0
    #: Dimensions of the projection (seeded TruncatedSVD) of dense vectors wider than the IVF index takes.
    ann_dims: int = generator_default("ann_dims")
    #: Sparse vectors: clusters of the cluster index, clusters walked per user (the first the pilot tries).
    sparse_clusters: int = generator_default("ann_sparse_clusters")
    sparse_probes: int = generator_default("ann_sparse_probes")
    #: The recall@10 floor: ``auto`` picks an approximate search only where its pilot reaches it.
    min_recall: float = generator_default("min_recall")
    #: Users sampled to measure the approximate search's recall@10 against exact search.
    recall_sample: int = generator_default("recall_sample_users")
    seed: int = 7

    def __post_init__(self) -> None:
        if self.method not in SEARCH_METHODS:
            raise ValueError(f"search method {self.method!r} is not one of {', '.join(SEARCH_METHODS)}")

    @classmethod
    def from_settings(cls, settings: GeneratorSettings, method: str | None = None) -> SearchOptions:
        """The options of a generator run: its settings (``GeneratorSettings``), ``method`` from ``--search``.

        Where the search runs (this machine or Dask) is not an option of the search: the pipeline's
        executor (:mod:`recommender.executor`) runs it."""
        return cls(
            method=method or settings.search,
            auto_exact_max_users=settings.auto_exact_max_users,
            block_mb=settings.topk_block_mb,
            dense_mb=settings.search_dense_mb,
            ann_candidates=settings.ann_candidates,
            ann_nprobe=settings.ann_nprobe,
            ann_dims=settings.ann_dims,
            sparse_clusters=settings.ann_sparse_clusters,
            sparse_probes=settings.ann_sparse_probes,
            min_recall=settings.min_recall,
            recall_sample=settings.recall_sample_users,
        )

    def method_for(self, vectors: object) -> str:
        """The method for one model's vectors (one row per user): :meth:`resolve` with their number."""
        return self.resolve(vectors.shape[0])

    def resolve(self, users: int) -> str:
        """The method for a model of ``users`` users: ``auto`` is exact up to ``auto_exact_max_users``,
        approximate above (which, under ``auto``, falls back to exact where it misses ``min_recall``)."""
        if self.method == "auto":
            return "exact" if users <= self.auto_exact_max_users else "ann"
        return self.method
