"""Which arm a user gets: a stable hash of (salt, user), the same in every process and on every host.

Python's ``hash()`` is salted per process (``PYTHONHASHSEED``), so it would send a user to a
different arm in each gunicorn worker; BLAKE2b of the text ``"<salt>:<user_handle>"`` gives the
same 64-bit number everywhere, forever.  That number, read as a fraction of 2**64, falls into
one arm's share of the cumulative weights.  Changing the salt reshuffles every user; changing a
weight moves only the users near the boundary that moved.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from functools import lru_cache
from itertools import accumulate

from recommender.experiments.definitions import Arm, Experiment

_SCALE = float(2**64)


def bucket(salt: str, user_handle: int) -> float:
    """A number in [0, 1), uniform over users, fixed for (salt, user)."""
    digest = hashlib.blake2b(f"{salt}:{int(user_handle)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


@lru_cache(maxsize=64)
def boundaries(arms: tuple[Arm, ...]) -> tuple[float, ...]:
    """Upper edge of each arm's share of [0, 1) (arms are frozen, so this is computed once each)."""
    total = sum(arm.weight for arm in arms)
    return tuple(edge / total for edge in accumulate(arm.weight for arm in arms))


def assign(experiment: Experiment, user_handle: int) -> Arm:
    edges = boundaries(experiment.arms)
    index = bisect_right(edges, bucket(experiment.salt, user_handle))
    return experiment.arms[min(index, len(edges) - 1)]
