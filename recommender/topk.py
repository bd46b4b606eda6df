"""All-users top-N cosine search: the one entry point the models call.

The work lives in :mod:`recommender.search` (``exact`` blocked dense/sparse products,
``clusters`` the cluster index of sparse vectors, ``ann`` faiss IVF candidates with exact
re-ranking of dense ones, ``recall`` the sampled check); this module picks one by
:class:`~recommender.search.options.SearchOptions` so that callers keep one interface.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
from scipy import sparse

from recommender.search.exact import exact_top_k, sparse_content
from recommender.search.neighbours import SCORE_DECIMALS, Neighbours
from recommender.search.options import SearchOptions

__all__ = ["SCORE_DECIMALS", "Neighbours", "SearchOptions", "top_k_cosine"]

log = logging.getLogger(__name__)


def top_k_cosine(
    vectors: np.ndarray | sparse.spmatrix,
    users: np.ndarray,
    n: int = 10,
    *,
    block_mb: int = 256,
    workers: int = 2,
    progress: bool = False,
    desc: str = "top-k",
    search: SearchOptions | None = None,
) -> Neighbours:
    """For every row of ``vectors`` (one per user in ``users``, ascending), its ``n`` most cosine-similar rows.

    Self is excluded; only positive similarities count; ties are broken by user_handle.  With
    ``search.method`` "ann" (or "auto" above ``auto_exact_max_users`` users) the answer is
    approximate and carries its measured ``recall_at_10``: sparse vectors by the cluster index,
    dense ones by the IVF index.  Under "auto" an approximate search never answers below
    ``search.min_recall``: the cluster index's pilot raises its probes, and where no setting (or
    the IVF index) reaches the floor the search is exact, with a warning and the reason in ``plan``.
    """
    options = search or SearchOptions()
    if options.method_for(vectors) == "exact":
        return exact_top_k(
            vectors, users, n, block_mb=block_mb, dense_mb=options.dense_mb, workers=workers, progress=progress, desc=desc
        )
    auto = options.method == "auto"
    if sparse_content(vectors):
        from recommender.search.clusters import cluster_top_k  # numba's kernels only when asked for

        return cluster_top_k(vectors, users, n, options=options, pilot=auto, workers=workers, progress=progress, desc=desc)
    from recommender.search.ann import ann_top_k  # faiss only when asked for

    answer = ann_top_k(vectors, users, n, options=options, block_mb=block_mb, workers=workers, progress=progress, desc=desc)
    if not auto or answer.recall_at_10 is None or answer.recall_at_10 >= options.min_recall:
        return answer
    log.warning("%s: the IVF index reached recall@10 %.4f, under MIN_RECALL=%s; searching exactly", desc,
                answer.recall_at_10, options.min_recall)
    exact = exact_top_k(vectors, users, n, block_mb=block_mb, dense_mb=options.dense_mb, workers=workers,
                        progress=progress, desc=desc)
    return replace(exact, plan={**(answer.plan or {}), "recall_at_10": answer.recall_at_10, "fallback": "exact"})
