"""The stored item: one per (user, model), the one shape the writer, the reader, the API and the tests share.

A neighbour is an object (:class:`Neighbour`: who, how similar, and room for the reasons why),
but the item is *stored* as parallel lists (``similar_users``, ``scores``, optional
``reasons``; in DynamoDB the reasons are one compact JSON string): that is the original
specification's answer shape, it keeps an item well under DynamoDB's 400 KB (and our 4 KB goal
at N=10), and it reads back without reshaping.  The
conversions to and from that record, and to and from DynamoDB's attribute values, live here
and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from recommender.topk import SCORE_DECIMALS, Neighbours

if TYPE_CHECKING:
    from recommender.reasons import Explanations


@dataclass(frozen=True, slots=True)
class Reason:
    """Why two users are similar: ``{"kind": "tag", "value": "python", "weight": 0.31}``."""

    kind: str
    value: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "weight": self.weight}


@dataclass(frozen=True, slots=True)
class Neighbour:
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
        """DynamoDB attribute values, built directly (the writer's hot path: no TypeSerializer)."""
        attributes: dict[str, dict] = {
            "user_handle": {"N": str(self.user_handle)},
            "model_handle": {"S": self.model_handle},
            "similar_users": {"L": [{"N": str(n.user_handle)} for n in self.neighbours]},
            "scores": {"L": [{"N": repr(n.score)} for n in self.neighbours]},
            "generated_at": {"S": self.generated_at},
            "run_id": {"S": self.run_id},
        }
        if any(n.reasons for n in self.neighbours):
            attributes["reasons"] = {"S": pack_reasons(self.neighbours)}
        return attributes

    @classmethod
    def from_dynamo(cls, attributes: dict[str, dict]) -> StoredItem:
        record = {key: _plain(value) for key, value in attributes.items()}
        if isinstance(record.get("reasons"), str):
            record["reasons"] = unpack_reasons(record["reasons"])
        return cls.from_record(record)


def pack_reasons(neighbours: Sequence[Neighbour]) -> str:
    """The reasons as one compact JSON string: each (kind, value) written once, referenced by index.

    Why not DynamoDB lists of maps: 30 maps per item cut DynamoDB Local's write rate from ~1,300 to
    ~370 items/s (botocore and the server both walk every map); and the same tag or course often
    explains several neighbours, so a table of distinct values keeps the item small.
    ``{"v": [["tag", "python"], ...], "r": [[[0, 0.31], ...], ...]}``.
    """
    values: dict[tuple[str, str], int] = {}
    rows = [[[values.setdefault((r.kind, r.value), len(values)), r.weight] for r in n.reasons] for n in neighbours]
    return json.dumps({"v": [list(v) for v in values], "r": rows}, separators=(",", ":"))


def unpack_reasons(text: str) -> list[list[dict[str, Any]]]:
    packed = json.loads(text)
    values = packed["v"]
    return [[{"kind": values[i][0], "value": values[i][1], "weight": w} for i, w in why] for why in packed["r"]]


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


def build_items(
    model_handle: str, neighbours: Neighbours, run_id: str, generated_at: str, explanations: Explanations | None = None,
) -> Iterator[StoredItem]:
    """Items for every user that has at least one neighbour, with the model's reasons when it has any."""
    if explanations is None:
        for user, similar, scores in neighbours.rows():
            yield StoredItem(user, model_handle, tuple(Neighbour(u, s) for u, s in zip(similar, scores)), run_id, generated_at)
        return
    answered = np.flatnonzero((neighbours.similar >= 0).any(axis=1))
    for row, (user, similar, scores) in zip(answered, neighbours.rows()):
        reasons = explanations.for_row(int(row), len(similar))
        yield StoredItem(user, model_handle, tuple(
            Neighbour(u, s, tuple(Reason(*r) for r in why)) for u, s, why in zip(similar, scores, reasons)
        ), run_id, generated_at)


__all__ = ["SCORE_DECIMALS", "Neighbour", "Reason", "StoredItem", "build_items"]
