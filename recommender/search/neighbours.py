"""The answer of every search engine: each user's top-N neighbours, with exact tie-breaking rules.

Shared by the exact and the approximate search so that both publish the same shape and the
pipeline does not care which one ran.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

#: Scores are rounded to the precision that is stored, *before* ties are broken, so that two
#: users whose stored scores are equal are ordered by handle whatever the float noise of the BLAS.
SCORE_DECIMALS = 6


def stored_units(scores: np.ndarray) -> np.ndarray:
    """Each score as it is stored, in units of ``10**-SCORE_DECIMALS`` (int64): the ``k`` of the text
    ``repr(round(score, SCORE_DECIMALS))`` = ``k / 10**SCORE_DECIMALS``, by Python's decimal rounding.

    ``score * 10**d`` rounded half up is that rounding but within 1e-6 of a half, where the float's
    exact value decides: those few take Python's ``round``.  (NaN must be masked by the caller.)
    """
    d = SCORE_DECIMALS
    values = np.asarray(scores, dtype=np.float64)
    scaled = values * 10.0**d
    k = np.floor(scaled + 0.5).astype(np.int64)
    near_half = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) <= 1e-6)
    flat = k.reshape(-1)
    for i, value in zip(near_half.tolist(), values.reshape(-1)[near_half].tolist()):
        flat[i] = round(round(value, d) * 10**d)
    return k


@dataclass(frozen=True)
class Neighbours:
    """Top-N answer for all users of one model.

    ``similar[i]`` are the user handles most similar to ``users[i]``, best first; a row with
    fewer than N users of positive similarity is padded with -1 (and NaN scores).
    ``method`` says which search produced it ("exact" or "ann"); ``recall_at_10`` is the recall
    measured on a sample against exact search (1.0 for the exact search, by construction); ``plan``
    how an approximate search (or ``auto``'s exact fallback) ran.
    """

    users: np.ndarray  # (U,) int64
    similar: np.ndarray  # (U, N) int64
    scores: np.ndarray  # (U, N) float32
    method: str = "exact"
    recall_at_10: float | None = 1.0
    #: How the approximate search ran (index, its parameters, the pilot's recall per probe count,
    #: an exact fallback): for the run report; None for a plain exact search.
    plan: dict | None = None

    def rows(self) -> Iterator[tuple[int, list[int], list[float]]]:
        """(user, neighbours, scores) for every user with at least one neighbour."""
        valid = self.similar >= 0
        for user, ids, scores, ok in zip(self.users, self.similar, self.scores, valid):
            if ok.any():
                yield int(user), ids[ok].tolist(), [round(float(s), SCORE_DECIMALS) for s in scores[ok]]

    @property
    def covered(self) -> int:
        """Users that get at least one neighbour."""
        return int((self.similar[:, 0] >= 0).sum()) if self.similar.size else 0


class Search:
    """One model's search, prepared once (the index trained, the probes piloted, the recall measured)
    and then asked for any rows of its users: a partition's block, a recall sample, or all of them.

    Why prepared and queried apart: what costs the whole model once (fitting an index, the pilot)
    runs on the driver; the queries, the largest share of a search, run in the partitions
    (:mod:`recommender.partitions`), each worker holding one copy of the prepared search.  A row's
    answer depends only on that row and the prepared search, so any cut of the rows gives the
    whole answer's rows, bit for bit (``tests/search/test_prepared.py``).
    """

    users: np.ndarray  # (U,) int64, ascending: the users searched, and searched among
    n: int
    method: str = "exact"
    #: Measured when the search was prepared (on the recall sample, against exact search); 1.0 exact.
    recall_at_10: float | None = 1.0
    plan: dict | None = None
    #: Partitions are cut on multiples of this many rows (the dense exact kernel's block: every
    #: GEMM is then the one-process search's).
    align: int = 1

    def query(self, rows: np.ndarray, threads: int = 2, *, progress: bool = False, desc: str = "top-k") -> Neighbours:
        """The top ``n`` of the users at ``rows`` (indices into :attr:`users`), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        found, similar, scores, _ = start_answer(self.users[rows], self.n)
        k = min(self.n, len(self.users) - 1)
        if k >= 1 and rows.size:
            from tqdm.auto import tqdm  # the search's, not the service's (which reads answers only)

            with tqdm(total=rows.size, desc=f"{desc} ({self.method})", unit="user", disable=not progress,
                      leave=False) as bar:
                cols, top = self.columns(rows, k, threads, bar)
            similar[:, :k] = np.where(cols >= 0, self.users[np.maximum(cols, 0)], -1)
            scores[:, :k] = top
        return Neighbours(found, similar, scores, method=self.method)

    def columns(self, rows: np.ndarray, k: int, threads: int, bar: Any) -> tuple[np.ndarray, np.ndarray]:
        """(columns, rounded scores) of the top ``k`` of each query row: what an index answers."""
        raise NotImplementedError

    def explain(self, model: Any, neighbours: Neighbours) -> Any:
        """The reasons of ``neighbours`` (just queried): the model's own, unless the search knows them
        (a fusion knows which components support each neighbour)."""
        return model.explain(neighbours)

    def release(self) -> None:
        """Drop what only the queries need (an index, lists): the partitions hold their own copies now."""

    def answer(self, threads: int = 2, *, progress: bool = False, desc: str = "top-k",
               stats: dict | None = None) -> Neighbours:
        """Every user's top ``n``: the whole answer, with the method, recall and plan of the search
        (``stats``, when given, receives the seconds of the queries: benchmarks)."""
        t0 = time.perf_counter()
        found = self.query(np.arange(len(self.users)), threads, progress=progress, desc=desc)
        if stats is not None:
            stats.setdefault("seconds", {})["query"] = round(time.perf_counter() - t0, 2)
        return replace(found, method=self.method, recall_at_10=self.recall_at_10, plan=self.plan)


def head(neighbours: Neighbours, n: int) -> Neighbours:
    """The first ``n`` neighbours of every user (what is stored of a list searched deeper)."""
    if neighbours.similar.shape[1] <= n:
        return neighbours
    return replace(neighbours, similar=neighbours.similar[:, :n], scores=neighbours.scores[:, :n])


def empty_answer(users: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(similar, scores) arrays meaning "no neighbour yet" for every user."""
    return np.full((len(users), n), -1, dtype=np.int64), np.full((len(users), n), np.nan, dtype=np.float32)


def start_answer(users: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """An approximate search's start: (users as int64, empty similar, empty scores, k), where k, the
    neighbours a user can have (``n``, but never more than the other users), is below 1 when there is
    nothing to search."""
    users = np.asarray(users, dtype=np.int64)
    similar, scores = empty_answer(users, n)
    return users, similar, scores, min(n, len(users) - 1)
