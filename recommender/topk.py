"""All-users top-N cosine search: the one entry point the models call.

The work lives in :mod:`recommender.search` (``exact`` blocked dense/sparse products,
``ann`` faiss IVF candidates with exact re-ranking, ``recall`` the sampled check); this module picks one by
:class:`~recommender.search.options.SearchOptions` so that callers keep one interface.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recommender.search.exact import exact_top_k
from recommender.search.neighbours import SCORE_DECIMALS, Neighbours
from recommender.search.options import SearchOptions

__all__ = ["SCORE_DECIMALS", "Neighbours", "SearchOptions", "top_k_cosine"]


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
    ``search.method`` "ann" (or "auto" above ``auto_exact_max_users`` users, unless a posting-list
    search of sparse vectors is cheap) the answer is approximate and carries its measured ``recall_at_10``.
    """
    options = search or SearchOptions()
    if options.method_for(vectors) == "ann":
        from recommender.search.ann import ann_top_k  # faiss only when asked for

        return ann_top_k(vectors, users, n, options=options, block_mb=block_mb, workers=workers, progress=progress, desc=desc)
    return exact_top_k(
        vectors, users, n, block_mb=block_mb, dense_mb=options.dense_mb, workers=workers, progress=progress, desc=desc
    )
