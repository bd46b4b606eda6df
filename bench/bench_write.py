"""Write-path helpers of the benchmark: synthetic neighbour lists shaped like the generator's."""

from __future__ import annotations

import numpy as np

from recommender.topk import Neighbours


def fake_neighbours(count: int, n: int = 10, seed: int = 0) -> Neighbours:
    """``count`` users with ``n`` random neighbours and descending scores (6 decimals, as stored)."""
    rng = np.random.default_rng(seed)
    users = np.arange(1, count + 1, dtype=np.int64)
    similar = rng.integers(1, count + 1, size=(count, n), dtype=np.int64)
    scores = np.sort(rng.random((count, n), dtype=np.float32), axis=1)[:, ::-1].round(6)
    return Neighbours(users, similar, np.ascontiguousarray(scores))
