"""All-users top-N cosine search: the one entry point for searching a fitted model's users.

A model gives its vectors (or, a model that fuses others, its candidates' scores);
:func:`similar_users` searches every user's neighbours among them.  The work lives in
:mod:`recommender.search` (``exact`` blocked dense/sparse products,
``clusters`` the cluster index of sparse vectors, ``ann`` faiss IVF candidates with exact
re-ranking of dense ones, ``recall`` the sampled check); this module picks one by
:class:`~recommender.search.options.SearchOptions` so that callers keep one interface.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.utils.validation import check_is_fitted

from recommender.search.exact import ExactSearch, dense_is_cheaper, sparse_content
from recommender.search.neighbours import SCORE_DECIMALS, Neighbours, Search
from recommender.search.options import SearchOptions

__all__ = ["SCORE_DECIMALS", "Neighbours", "Search", "SearchOptions", "prepare_search", "similar_users", "top_k_cosine"]

log = logging.getLogger(__name__)


def similar_users(model: Any, n: int = 10, *, search: SearchOptions | None = None, progress: bool = False,
                  desc: str | None = None) -> Neighbours:
    """Top-``n`` cosine neighbours of every user of the fitted ``model``, self excluded, ties by the
    pair's tie key (exact unless ``search`` says; :func:`top_k_cosine`).

    A model that fuses others (``combine``, :mod:`recommender.models.ensemble`), fitted alone, has
    its fitted components' candidates searched to its ``depth`` here, then fuses them (its last fused
    answer, when it is ``n`` wide, is the answer: fusing again would give the same)."""
    desc = desc or type(model).__name__
    if hasattr(model, "combine"):
        fused = getattr(model, "neighbours_", None)
        if fused is not None and fused.similar.shape[1] == n:
            return fused
        return model.combine(component_lists(model, n, search=search, progress=progress), n,
                             models=model.component_models_)
    vectors, users = model.user_vectors()
    return top_k_cosine(vectors, users, n, search=search, progress=progress, desc=desc)


def component_lists(model: Any, n: int, *, search: SearchOptions | None = None,
                    progress: bool = False) -> dict[str, Neighbours]:
    """The candidates of a fitted model that fuses others, fitted alone: each fitted component's
    users searched to the fuser's ``depth`` (never less than ``n``)."""
    check_is_fitted(model, "component_models_", msg="%(name)s: call fit() or combine() first")
    depth = max(n, int(model.depth))
    return {h: similar_users(m, depth, search=search, progress=progress, desc=h)
            for h, m in model.component_models_.items()}


def top_k_cosine(
    vectors: np.ndarray | sparse.spmatrix,
    users: np.ndarray,
    n: int = 10,
    *,
    workers: int = 2,
    progress: bool = False,
    desc: str = "top-k",
    search: SearchOptions | None = None,
) -> Neighbours:
    """For every row of ``vectors`` (one per user in ``users``, ascending), its ``n`` most cosine-similar rows.

    Self is excluded; only positive similarities count; ties are broken by the pair's tie key.
    :func:`prepare_search` picks and prepares the search, answered here for every user.
    """
    prepared = prepare_search(vectors, users, n, workers=workers, desc=desc, search=search)
    return prepared.answer(workers, progress=progress, desc=desc)


def prepare_search(
    vectors: np.ndarray | sparse.spmatrix,
    users: np.ndarray,
    n: int = 10,
    *,
    workers: int = 2,
    desc: str = "top-k",
    search: SearchOptions | None = None,
) -> Search:
    """The search of one model's users, prepared to answer any of their rows (:class:`~recommender.search.neighbours.Search`).

    With ``search.method`` "ann" (or "auto" above ``auto_exact_max_users`` users) it is approximate
    and carries its measured ``recall_at_10``: sparse vectors by the cluster index, dense ones by
    the IVF index.  Sparse vectors with features held by most users (the assessment model's
    topic part beside its interests) go the dense way: walking those features' posting lists costs
    more than the exact search's GEMM (:func:`~recommender.search.exact.dense_is_cheaper`, the exact
    kernel's own rule), even within a few clusters.  Under "auto" an approximate search never answers below ``search.min_recall``:
    the cluster index's pilot raises its probes, and where no setting (or the IVF index) reaches
    the floor the search is exact, with a warning and the reason in ``plan``.  Preparing (training
    an index, the pilot, the recall sample) runs here on ``workers`` threads; the queries run
    wherever the search is sent (:mod:`recommender.partitions`).
    """
    options = search or SearchOptions()
    exact = ExactSearch(vectors, users, n, block_mb=options.block_mb, dense_mb=options.dense_mb)
    if options.method_for(vectors) == "exact":
        return exact
    auto = options.method == "auto"
    if sparse_content(vectors) and not dense_is_cheaper(sparse.csr_matrix(vectors)):
        from recommender.search.clusters import prepare_clusters  # numba's kernels only when asked for

        return prepare_clusters(vectors, users, n, options=options, pilot=auto, workers=workers, desc=desc)
    from recommender.search.ann import prepare_ivf  # faiss only when asked for

    prepared = prepare_ivf(vectors, users, n, options=options, workers=workers, desc=desc)
    if not auto or prepared.recall_at_10 is None or prepared.recall_at_10 >= options.min_recall:
        return prepared
    log.warning("%s: the IVF index reached recall@10 %.4f, under MIN_RECALL=%s; searching exactly", desc,
                prepared.recall_at_10, options.min_recall)
    exact.plan = {**(prepared.plan or {}), "recall_at_10": prepared.recall_at_10, "fallback": "exact"}
    return exact
