"""The stored item: one per (user, model), the one shape the writer, the reader, the API and the tests share.

A neighbour is an object (:class:`Neighbour`: who, how similar, and room for the reasons why),
but the item is *stored* as parallel lists (``similar_users``, ``scores``, optional
``reasons``): that is the original specification's answer shape, it keeps an item well under
DynamoDB's 400 KB (and our 4 KB goal at N=10), and it reads back without reshaping.  The
conversions to and from that record, and to and from DynamoDB's attribute values, live here
and nowhere else.

In DynamoDB each list is **one string attribute holding compact JSON** (``"[4254,9796]"``,
``"[0.978627,0.977795]"``; the reasons as :func:`pack_reasons` writes them), not a ``L`` list of
``N`` numbers: every attribute value is walked by botocore's serializer and parsed again by the
database, and twenty ``N`` values per item made the write path ~1.5× more expensive on both
sides (bench/README.md, "Writes").  Items written before that change (``L`` lists) still read
back the same, so runs published before an upgrade keep serving until they are replaced.

The generator does not build an object per item on its hot path: :class:`ItemBlock` holds a
model's answer as arrays, yields the DynamoDB attribute values straight from them (the same
values :meth:`StoredItem.to_dynamo` gives), splits into slices that are cheap to send to a
writer process, and still iterates as :class:`StoredItem` for every other consumer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from recommender.search.neighbours import SCORE_DECIMALS, Neighbours  # not recommender.topk: writer processes and the API need no search

if TYPE_CHECKING:
    from recommender.reasons import Explanations

_CHUNK = 4096  # rows converted to Python lists at once


# Reason and Neighbour are named tuples, not dataclasses, for the API's item cache: a tuple of
# numbers and strings is untracked by Python's garbage collector after its first collection, so
# 100,000 cached items do not make every full collection walk millions of objects (a worker
# stalled for ~0.1-1 s at a time under load before; bench/README.md).
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

    # -- the stored record (JSON lines, DynamoDB) ------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        """Plain ints, floats and strings; ``reasons`` only when some neighbour has one."""
        record: dict[str, Any] = {
            "user_handle": self.user_handle,
            "model_handle": self.model_handle,
            "similar_users": self.similar_users,
            "scores": self.scores,
            "generated_at": self.generated_at,
            "run_id": self.run_id,
        }
        if any(n.reasons for n in self.neighbours):
            record["reasons"] = [[r.to_dict() for r in n.reasons] for n in self.neighbours]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StoredItem:
        users: Sequence[Any] = record.get("similar_users") or []
        scores: Sequence[Any] = record.get("scores") or []
        reasons: Sequence[Any] = record.get("reasons") or [()] * len(users)
        neighbours = tuple(
            Neighbour(int(u), float(s), tuple(Reason(str(r["kind"]), str(r["value"]), float(r["weight"])) for r in why))
            for u, s, why in zip(users, scores, reasons)
        )
        return cls(
            user_handle=int(record["user_handle"]),
            model_handle=str(record["model_handle"]),
            neighbours=neighbours,
            run_id=str(record.get("run_id", "")),
            generated_at=str(record.get("generated_at", "")),
        )

    def to_dynamo(self) -> dict[str, dict]:
        """DynamoDB attribute values, built directly (no TypeSerializer); lists as compact JSON strings."""
        reasons = pack_reasons([[((r.kind, r.value), r.weight) for r in n.reasons] for n in self.neighbours])
        return _attributes(self.user_handle, self.model_handle, self.similar_users, self.scores, reasons,
                           self.run_id, self.generated_at)

    @classmethod
    def from_dynamo(cls, attributes: dict[str, dict]) -> StoredItem:
        """Either stored shape: lists as JSON strings (``S``), or as before, ``L`` lists of ``N``."""
        record = {key: _plain(value) for key, value in attributes.items()}
        for key in ("similar_users", "scores"):
            if isinstance(record.get(key), str):
                record[key] = json.loads(record[key])
        if isinstance(record.get("reasons"), str):
            record["reasons"] = unpack_reasons(record["reasons"])
        return cls.from_record(record)


def _attributes(user_handle: int, model_handle: str, similar: list[int], scores: list[float], reasons: str | None,
                run_id: str, generated_at: str) -> dict[str, dict]:
    """The one place the stored attributes are laid out (both encoders end here)."""
    attributes: dict[str, dict] = {
        "user_handle": {"N": str(user_handle)},
        "model_handle": {"S": model_handle},
        "similar_users": {"S": _dumps(similar)},
        "scores": {"S": _dumps(scores)},  # float repr: the shortest text that reads back the same float
        "generated_at": {"S": generated_at},
        "run_id": {"S": run_id},
    }
    if reasons is not None:
        attributes["reasons"] = {"S": reasons}
    return attributes


#: Compact JSON (the C encoder; one instance: ``json.dumps`` with options builds an encoder per call).
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def pack_reasons(reasons: Sequence[Sequence[tuple[Hashable, float]]],
                 label: Callable[[Any], list[str]] = list) -> str | None:
    """Each neighbour's ``(key, weight)`` reasons as one compact JSON string; None when there are none.

    Each distinct key (a ``(kind, value)`` pair, or what ``label`` turns into one) is written once
    and referenced by index.  Why not DynamoDB lists of maps: 30 maps per item cut DynamoDB
    Local's write rate from ~1,300 to ~370 items/s (botocore and the server both walk every map);
    and the same tag or course often explains several neighbours, so a table of distinct values
    keeps the item small.  ``{"v": [["tag", "python"], ...], "r": [[[0, 0.31], ...], ...]}``.
    """
    if not any(reasons):
        return None
    values: dict[Hashable, int] = {}
    rows = [[[values.setdefault(key, len(values)), weight] for key, weight in why] for why in reasons]
    return _dumps({"v": [label(key) for key in values], "r": rows})


def unpack_reasons(text: str) -> list[list[dict[str, Any]]]:
    packed = json.loads(text)
    values = packed["v"]
    return [[{"kind": values[i][0], "value": values[i][1], "weight": w} for i, w in why] for why in packed["r"]]


def list_attributes(item: StoredItem) -> dict[str, dict]:
    """The item as stored before the lists became strings (``L`` lists of ``N``): what runs published
    by earlier versions hold.  Only for tests and the benchmark; :meth:`StoredItem.from_dynamo` reads it."""
    attributes = item.to_dynamo()
    attributes["similar_users"] = {"L": [{"N": str(n.user_handle)} for n in item.neighbours]}
    attributes["scores"] = {"L": [{"N": repr(n.score)} for n in item.neighbours]}
    return attributes


def _plain(value: dict) -> Any:
    """One DynamoDB attribute value → plain Python (numbers as Decimal until typed by from_record)."""
    (kind, inner), = value.items()
    if kind == "N":
        return Decimal(inner)
    if kind == "L":
        return [_plain(v) for v in inner]
    if kind == "M":
        return {k: _plain(v) for k, v in inner.items()}
    return inner


@dataclass(frozen=True)
class ItemBlock:
    """The items of one model for a block of users, as the search left them (arrays), not as objects.

    Iterating yields :class:`StoredItem` (users without any neighbour skipped);
    :meth:`dynamo_items` yields the same items' DynamoDB attribute values without building the
    objects (the writer's hot path: ~5× cheaper); :meth:`split` cuts it into slices of users that
    pickle as a few arrays, for writer processes.
    """

    model_handle: str
    neighbours: Neighbours
    run_id: str
    generated_at: str
    explanations: Explanations | None = None

    def __len__(self) -> int:
        return self.neighbours.covered

    def _rows(self) -> Iterator[tuple[int, list[int], list[float], list[list[tuple[int, float]]]]]:
        """(user, neighbours, scores, reasons as (name index, weight)) per user with a neighbour.

        Arrays become Python lists a chunk of rows at a time: one ``tolist`` per chunk instead of
        numpy scalars per value (most of the cost of building items), memory bounded by the chunk.
        """
        users, similar, scores = self.neighbours.users, self.neighbours.similar, self.neighbours.scores
        counts = (similar >= 0).sum(axis=1)
        if not np.array_equal(similar >= 0, np.arange(similar.shape[1]) < counts[:, None]):
            raise ValueError(f"{self.model_handle}: neighbour lists must be padded with -1 at the end only")
        why = self.explanations
        for start in range(0, len(users), _CHUNK):
            rows = slice(start, start + _CHUNK)
            chunk = zip(users[rows].tolist(), counts[rows].tolist(), similar[rows].tolist(), scores[rows].tolist(),
                        why.index[rows].tolist() if why is not None else repeat(()),
                        why.weight[rows].tolist() if why is not None else repeat(()))
            for user, k, ids, values, index, weight in chunk:
                if k:
                    reasons = [[(j, w) for j, w in zip(i, wt) if j >= 0] for i, wt in zip(index[:k], weight[:k])]
                    yield user, ids[:k], [round(v, SCORE_DECIMALS) for v in values[:k]], reasons

    def _names(self) -> tuple[str, list[str]]:
        why = self.explanations
        return (why.kind, [str(name) for name in why.names.tolist()]) if why is not None else ("", [])

    def __iter__(self) -> Iterator[StoredItem]:
        kind, names = self._names()
        for user, similar, scores, reasons in self._rows():
            why = reasons or [()] * len(similar)
            neighbours = tuple(Neighbour(u, s, tuple(Reason(kind, names[j], w) for j, w in r))
                               for u, s, r in zip(similar, scores, why))
            yield StoredItem(user, self.model_handle, neighbours, self.run_id, self.generated_at)

    def dynamo_items(self) -> Iterator[dict[str, dict]]:
        """``item.to_dynamo()`` for every item, without building the items."""
        kind, names = self._names()

        def label(j: int) -> list[str]:
            return [kind, names[j]]

        for user, similar, scores, reasons in self._rows():
            yield _attributes(user, self.model_handle, similar, scores, pack_reasons(reasons, label), self.run_id,
                              self.generated_at)

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
