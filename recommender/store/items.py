"""The stored item: one per (user, model), the one shape the writer, the reader, the API and the tests share.

A neighbour is an object (:class:`Neighbour`: who, how similar, and room for the reasons why),
but the item is *stored* as parallel lists (``similar_users``, ``scores``, optional
``reasons``): that is the original specification's answer shape, it keeps an item well under
DynamoDB's 400 KB (and our 4 KB goal at N=10), and it reads back without reshaping.  This module
holds the item's types; every stored form of an item (DynamoDB attribute values, ImportTable's
lines, the dry run's JSON lines), to and from, is :mod:`recommender.store.codec`'s.

The generator does not build an object per item on its hot path: :class:`ItemBlock` holds a
model's answer as arrays, which the codec turns into stored forms a chunk of rows at a time
(:meth:`ItemBlock.chunks`); it splits into slices that are cheap to send to a partition's worker
process, and still iterates as :class:`StoredItem` for every other consumer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from recommender.search.neighbours import SCORE_DECIMALS, Neighbours  # not recommender.topk: writer processes and the API need no search

if TYPE_CHECKING:
    from recommender.reasons import Explanations

_CHUNK = 4096  # rows converted to Python lists (or texts) at once


# Reason and Neighbour are named tuples: light, immutable and hashable.  (The garbage collector
# still tracks them, as it does every tuple subclass: the API's item cache keeps plain tuples.)
class Reason(NamedTuple):
    """Why two users are similar: ``{"kind": "tag", "value": "python", "weight": 0.31}``."""

    kind: str
    value: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "weight": self.weight}


class Neighbour(NamedTuple):
    user_handle: int
    score: float
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredItem:
    """The top-N neighbours of one user by one model, as published by one run."""

    user_handle: int
    model_handle: str
    neighbours: tuple[Neighbour, ...]
    run_id: str
    generated_at: str
    #: Reasons read but not decoded yet (``codec.from_dynamo(..., reasons=False)``);
    #: :func:`recommender.store.codec.explained` decodes them.  Why: decoding is most of reading an
    #: item and only an ``explain`` request shows reasons, so the API keeps the text until one asks.
    pending_reasons: str | None = None

    @property
    def similar_users(self) -> list[int]:
        return [n.user_handle for n in self.neighbours]

    @property
    def scores(self) -> list[float]:
        return [n.score for n in self.neighbours]

    @classmethod
    def of(cls, user_handle: int, model_handle: str, pairs: Iterable[tuple[int, float]], *,
           run_id: str = "run", generated_at: str = "1970-01-01T00:00:00Z") -> StoredItem:
        """An item from ``(neighbour, score)`` pairs: for tools and tests."""
        neighbours = tuple(Neighbour(int(u), float(s)) for u, s in pairs)
        return cls(int(user_handle), model_handle, neighbours, run_id, generated_at)


@dataclass(frozen=True)
class ItemBlock:
    """The items of one model for a block of users, as the search left them (arrays), not as objects.

    Iterating yields :class:`StoredItem` (users without any neighbour skipped); the codec's
    :func:`~recommender.store.codec.dynamo_items` and :func:`~recommender.store.codec.import_lines`
    give the same items' stored forms without building the objects (the writer's hot path);
    :meth:`split` cuts it into slices of users that pickle as a few arrays, for write-only partitions.
    """

    model_handle: str
    neighbours: Neighbours
    run_id: str
    generated_at: str
    explanations: Explanations | None = None

    def __len__(self) -> int:
        return self.neighbours.covered

    def chunks(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Consecutive slices of at most ``_CHUNK`` rows and each row's count of neighbours.

        Why chunks: arrays become Python lists or texts a chunk of rows at a time, one ``tolist``
        or one join per chunk instead of numpy scalars per value (most of the cost of building
        items), with memory bounded by the chunk."""
        similar = self.neighbours.similar
        counts = (similar >= 0).sum(axis=1)
        if not np.array_equal(similar >= 0, np.arange(similar.shape[1]) < counts[:, None]):
            raise ValueError(f"{self.model_handle}: neighbour lists must be padded with -1 at the end only")
        for start in range(0, len(counts), _CHUNK):
            rows = slice(start, start + _CHUNK)
            yield rows, counts[rows]

    def reason_index(self, rows: slice) -> np.ndarray:
        """The reason indices of a chunk of rows, -1 past each user's last neighbour."""
        assert self.explanations is not None
        listed = self.neighbours.similar[rows] >= 0
        return np.where(listed[:, :, None], self.explanations.index[rows], -1)

    def __iter__(self) -> Iterator[StoredItem]:
        n, why = self.neighbours, self.explanations
        names = [str(name) for name in why.names.tolist()] if why is not None else []
        for rows, counts in self.chunks():
            reasons: Iterable[Any] = (repeat((None, None)) if why is None
                                      else zip(self.reason_index(rows).tolist(), why.weight[rows].tolist()))
            chunk = zip(n.users[rows].tolist(), counts.tolist(), n.similar[rows].tolist(), n.scores[rows].tolist(),
                        reasons)
            for user, k, similar, scores, (index, weight) in chunk:
                if not k:
                    continue
                values = [round(v, SCORE_DECIMALS) for v in scores[:k]]
                if why is None:
                    neighbours = tuple(Neighbour(u, s) for u, s in zip(similar[:k], values))
                else:
                    neighbours = tuple(
                        Neighbour(u, s, tuple(Reason(why.kind, names[j], w) for j, w in zip(i, wt) if j >= 0))
                        for u, s, i, wt in zip(similar[:k], values, index, weight))
                yield StoredItem(user, self.model_handle, neighbours, self.run_id, self.generated_at)

    def split(self, users: int) -> Iterator[ItemBlock]:
        """Consecutive slices of at most ``users`` users; each keeps only the reason names it uses."""
        n = self.neighbours
        for start in range(0, len(n.users), max(1, users)):
            rows = slice(start, start + max(1, users))
            part = replace(n, users=n.users[rows], similar=n.similar[rows], scores=n.scores[rows])
            why = self.explanations
            if why is not None:
                index = why.index[rows]
                used = np.unique(index[index >= 0])
                why = replace(why, names=why.names[used], index=np.where(index >= 0, np.searchsorted(used, index), -1),
                              weight=why.weight[rows])
            yield replace(self, neighbours=part, explanations=why)


def build_items(
    model_handle: str, neighbours: Neighbours, run_id: str, generated_at: str, explanations: Explanations | None = None,
) -> ItemBlock:
    """Items for every user that has at least one neighbour, with the model's reasons when it has any."""
    return ItemBlock(model_handle, neighbours, run_id, generated_at, explanations)


__all__ = ["SCORE_DECIMALS", "ItemBlock", "Neighbour", "Reason", "StoredItem", "build_items"]
