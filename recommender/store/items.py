"""The stored item: one per (user, model), the one shape the writer, the reader, the API and the tests share.

A neighbour is an object (:class:`Neighbour`: who, how similar, and room for the reasons why),
but the item is *stored* as parallel lists (``similar_users``, ``scores``, optional
``reasons``): that is the original specification's answer shape, it keeps an item well under
DynamoDB's 400 KB (and our 4 KB goal at N=10), and it reads back without reshaping.  The
conversions to and from that record live here and nowhere else; the attribute values are
:mod:`recommender.store.marshal`'s.

In DynamoDB each list is **one string attribute holding compact JSON** (``"[4254,9796]"``,
``"[0.978627,0.977795]"``; the reasons as :func:`pack_reasons` writes them), not a ``L`` list of
``N`` numbers: every attribute value is walked by botocore's serializer and parsed again by the
database, and twenty ``N`` values per item made the write path much more expensive on both
sides (``benchmarks/results/write.json``).  The reasons are one more string, integers but for the names
(:func:`pack_reasons`): with float weights and nested lists they roughly doubled the client's
CPU per item; packed this way they add little (``benchmarks/bench_reasons_write.py``).  Items written in any earlier shape (``L`` lists; reasons as lists of
maps, or packed with float weights) still read back the same, so runs published before an
upgrade keep serving until they are replaced.

The generator does not build an object per item on its hot path: :class:`ItemBlock` holds a
model's answer as arrays, yields the DynamoDB attribute values straight from them (the same
values :meth:`StoredItem.to_dynamo` gives) or an export's DynamoDB JSON lines of them
(:meth:`ItemBlock.import_lines`, text without the attribute dicts), splits into slices that are
cheap to send to a writer process, and still iterates as :class:`StoredItem` for every other consumer.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from recommender.reasons import MAX_REASONS
from recommender.search.neighbours import SCORE_DECIMALS, Neighbours  # not recommender.topk: writer processes and the API need no search
from recommender.store.marshal import from_attributes, to_attributes

if TYPE_CHECKING:
    from recommender.reasons import Explanations

_CHUNK = 4096  # rows converted to Python lists at once


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
    #: Reasons read but not decoded yet (``from_dynamo(..., reasons=False)``); :meth:`explained`
    #: decodes them.  Why: decoding is most of reading an item and only an
    #: ``explain`` request shows reasons, so the API keeps the text until one asks.
    pending_reasons: str | None = None

    def explained(self) -> StoredItem:
        """This item with its reasons decoded (itself when there is nothing pending)."""
        if self.pending_reasons is None:
            return self
        reasons = unpack_reasons(self.pending_reasons)
        neighbours = tuple(Neighbour(n.user_handle, n.score, why) for n, why in zip(self.neighbours, reasons))
        return replace(self, neighbours=neighbours, pending_reasons=None)

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
        if self.pending_reasons is not None:
            return self.explained().to_record()
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
        reasons: Sequence[Any] = record.get("reasons") or ()
        return cls._from(record, [tuple(Reason(str(r["kind"]), str(r["value"]), float(r["weight"])) for r in why)
                                  for why in reasons])

    @classmethod
    def _from(cls, record: dict[str, Any], reasons: Sequence[tuple[Reason, ...]], pending_reasons: str | None = None) -> StoredItem:
        users: Sequence[Any] = record.get("similar_users") or []
        scores: Sequence[Any] = record.get("scores") or []
        neighbours = tuple(Neighbour(int(u), float(s), why)
                           for u, s, why in zip(users, scores, reasons or repeat((), len(users))))
        return cls(
            user_handle=int(record["user_handle"]),
            model_handle=str(record["model_handle"]),
            neighbours=neighbours,
            run_id=str(record.get("run_id", "")),
            generated_at=str(record.get("generated_at", "")),
            pending_reasons=pending_reasons,
        )

    def to_dynamo(self) -> dict[str, dict]:
        """DynamoDB attribute values (:mod:`recommender.store.marshal`); lists as compact JSON strings."""
        if self.pending_reasons is not None:
            return self.explained().to_dynamo()
        reasons = pack_reasons([n.reasons for n in self.neighbours])
        return _attributes(self.user_handle, self.model_handle, self.similar_users, self.scores, reasons,
                           self.run_id, self.generated_at)

    @classmethod
    def from_dynamo(cls, attributes: dict[str, dict], *, reasons: bool = True) -> StoredItem:
        """The item from its attributes: lists as JSON strings, reasons packed (:func:`pack_reasons`).

        ``reasons=False`` leaves the reasons undecoded in ``pending_reasons`` (:meth:`explained`)."""
        record = from_attributes(attributes)
        record["similar_users"] = json.loads(record["similar_users"])
        record["scores"] = json.loads(record["scores"])
        packed = record.get("reasons")
        if packed is None:
            return cls._from(record, ())
        if not reasons:
            return cls._from(record, (), pending_reasons=packed)
        return cls._from(record, unpack_reasons(packed))


def _attributes(user_handle: int, model_handle: str, similar: list[int], scores: list[float], reasons: str | None,
                run_id: str, generated_at: str) -> dict[str, dict]:
    """The one place the stored attributes are laid out (both encoders end here)."""
    item: dict[str, Any] = {
        "user_handle": user_handle,
        "model_handle": model_handle,
        "similar_users": _dumps(similar),
        "scores": _dumps(scores),  # float repr: the shortest text that reads back the same float
        "generated_at": generated_at,
        "run_id": run_id,
    }
    if reasons is not None:
        item["reasons"] = reasons
    return to_attributes(item)




def _import_line(user: int, model: str, similar: str, scores: str, reasons: str | None, run: str) -> str:
    """``'{"Item":' + JSON of _attributes(...) + '}\\n'``, ImportTable's DynamoDB JSON line, written as text.

    ``similar`` and ``scores`` are the lists' compact JSON texts (:func:`_list_texts`), ``model`` the
    model handle as JSON, ``run`` the ``generated_at`` and ``run_id`` attributes
    as JSON (the same for a whole block: :meth:`ItemBlock.import_lines` makes them once).  Why not
    through :func:`_attributes`: boto3's serializer and the dicts were most of an export's CPU per
    item; the lists are JSON without anything to escape and the packed reasons are one string.
    """
    why = "" if reasons is None else ',"reasons":{"S":' + _dumps(reasons) + "}"
    return ('{"Item":{"user_handle":{"N":"' + str(user) + '"},"model_handle":{"S":' + model + '},"similar_users":{"S":"'
            + similar + '"},"scores":{"S":"' + scores + '"},' + run + why + "}}\n")


def _list_texts(joined: str, lengths: np.ndarray, counts: np.ndarray) -> list[str]:
    """``"[" + row's texts joined by "," + "]"`` for consecutive rows of ``counts[i]`` texts each, from
    all the texts already ``joined`` by "," and their ``lengths``: one slice per row."""
    ends = np.cumsum(lengths + 1)
    stops = np.concatenate(([0], ends))[np.cumsum(counts)] - 1
    starts = np.concatenate(([0], stops[:-1] + 1))
    return ["[" + joined[a:b] + "]" for a, b in zip(starts.tolist(), stops.tolist())]


def _int_texts(numbers: np.ndarray) -> tuple[str, np.ndarray]:
    """``str`` of every integer joined by ",", and their lengths."""
    texts = list(map(str, numbers.tolist()))
    return ",".join(texts), np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))


def _score_texts(scores: np.ndarray) -> tuple[str, np.ndarray]:
    """``repr(round(score, SCORE_DECIMALS))`` of every score (what :meth:`ItemBlock.dynamo_items` stores)
    joined by ",", and their lengths, written as digits in a byte matrix instead of a float's text
    each (the per-value ``round`` and ``repr`` were most of an item's text).

    A rounded score ``k / 10**d`` of 10**-4 ≤ score < 1 reads ``0.`` and the ``d`` digits of ``k``
    without trailing zeros (the shortest text of the nearest float).  ``k`` is ``score * 10**d``
    rounded, which is Python's decimal rounding unless the product is within 1e-6 of a half; such
    scores, and the others (1.0, below 10**-4: exponent notation), take ``repr(round(...))``.
    """
    d = SCORE_DECIMALS
    scaled = scores.astype(np.float64) * 10.0**d
    k = np.floor(scaled + 0.5).astype(np.int64)
    plain = (k >= 10 ** (d - 2)) & (k < 10**d) & (np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6)
    digits = (k[:, None] // 10 ** np.arange(d - 1, -1, -1)) % 10
    trailing = np.argmax(np.cumsum(digits[:, ::-1], axis=1) > 0, axis=1)  # zeros at the end (k > 0)
    others = np.flatnonzero(~plain)
    texts = [repr(round(v, d)) for v in scores[others].astype(np.float64).tolist()]
    width = max([2 + d, *map(len, texts)])
    chars = np.full((len(scores), width + 1), ord(","), dtype=np.uint8)
    chars[:, 0], chars[:, 1], chars[:, 2:2 + d] = ord("0"), ord("."), digits + ord("0")
    lengths = np.where(plain, 2 + d - trailing, 0)
    for row, text in zip(others.tolist(), texts):
        chars[row, :len(text)] = np.frombuffer(text.encode(), dtype=np.uint8)
        chars[row, len(text)] = ord(",")
        lengths[row] = len(text)
    chars[np.arange(len(scores)), lengths] = ord(",")
    keep = np.arange(width + 1) <= lengths[:, None]
    return chars[keep].tobytes().decode()[:-1], lengths


#: Compact JSON (the C encoder; one instance: ``json.dumps`` with options builds an encoder per call).
_dumps = json.JSONEncoder(separators=(",", ":")).encode

#: Stored reason weights are integers in this unit (thousandths): reasons are computed at
#: ``recommender.reasons.WEIGHT_DECIMALS`` = 3 decimals, and an integer is read back as exactly
#: that rounded float (``k / 1000``) while costing a fraction of a float's text to write (a
#: weight with more decimals is stored rounded to 3).  Items already stored are read with it:
#: never change it (a finer precision needs a new key).
WEIGHT_UNIT = 1000
#: Integers below this become text by table look-up (:func:`_join_numbers`).
_TABLE_LIMIT = 1 << 16


def pack_reasons(reasons: Sequence[Sequence[tuple[str, str, float]]]) -> str | None:
    """Each neighbour's ``(kind, value, weight)`` reasons as one compact JSON string; None when there are none.

    ``{"k": "tag", "n": 3, "v": ["python", "c#"], "i": [0, 1, -1, 0, -1, -1], "w": [310, 50, 0, 2, 0, 0]}``:
    the kind once (a model's reasons share it; mixed kinds write ``v`` as ``[kind, value]`` pairs
    and no ``k``), each distinct value once (the same tag or course often explains several
    neighbours), then ``n`` slots per neighbour: the index into ``v`` (-1: none) and the weight in
    :data:`WEIGHT_UNIT`.  Why not DynamoDB lists of maps: 30 maps per item cut DynamoDB Local's
    write rate from ~1,300 to ~370 items/s (botocore and the server both walk every map).  Why
    flat rows of integers: the earlier ``{"v": [[kind, value], ...], "r": [[[index, 0.31], ...],
    ...]}`` spent most of a reasoned item's cost on float texts and nested lists (building it
    took ~80 µs of client CPU per item more than the lists alone, this 5–11 µs), and fixed-width
    rows come straight from the arrays (:class:`ItemBlock`) without a Python loop per neighbour.
    Why not compressed (zlib into a ``B`` attribute): it saves 127 of the median 340 bytes but
    costs 20–29 µs of client CPU per item, and DynamoDB Local's CPU per item did not measurably
    depend on the reasons (benchmarks/results/reasons_write.txt).
    """
    if not any(reasons):
        return None
    width = max(MAX_REASONS, *(len(why) for why in reasons))
    values: dict[tuple[str, str], int] = {}
    ids: list[int] = []
    weights: list[int] = []
    for why in reasons:
        ids += [values.setdefault((kind, value), len(values)) for kind, value, _ in why] + [-1] * (width - len(why))
        weights += [round(weight * WEIGHT_UNIT) for _, _, weight in why] + [0] * (width - len(why))
    kinds = {kind for kind, _ in values}
    kind = _dumps(kinds.pop()) if len(kinds) == 1 else None
    texts = [_dumps(value) for _, value in values] if kind else [_dumps(list(key)) for key in values]
    return _packed(kind, width, ",".join(texts), ",".join(map(str, ids)), ",".join(map(str, weights)))


def _packed(kind: str | None, width: int, values: str, ids: str, weights: str) -> str:
    """The packed text from its parts, each already JSON, lists without brackets (both encoders end here)."""
    head = '{"n":' if kind is None else '{"k":' + kind + ',"n":'
    return head + str(width) + ',"v":[' + values + '],"i":[' + ids + '],"w":[' + weights + "]}"


def unpack_reasons(text: str) -> list[tuple[Reason, ...]]:
    """Each neighbour's reasons from :func:`pack_reasons`'s text."""
    packed = json.loads(text)
    kind = packed.get("k")
    values = packed["v"] if kind is None else [(kind, value) for value in packed["v"]]
    reasons = [Reason(*values[i], w / WEIGHT_UNIT) if i >= 0 else None for i, w in zip(packed["i"], packed["w"])]
    width = packed["n"]
    return [tuple(r for r in reasons[start:start + width] if r is not None) for start in range(0, len(reasons), width)]


def _pack_arrays(index: np.ndarray, weight: np.ndarray, neighbours: np.ndarray, names: list[str],
                 name_lengths: np.ndarray) -> tuple[list[str], list[str], list[str]]:
    """:func:`pack_reasons`'s ``v``, ``i`` and ``w`` texts for a chunk of users at once, from (users, N, R)
    reason arrays (-1 past each user's ``neighbours``) and the names already as JSON.

    Vectorised: a stable sort of each user's indices finds every value's first use (the ``v``
    table, in that order; empty for a user without reasons); every number and name of the chunk
    becomes text in one join, and each user's part is a slice of it (:func:`_join_rows`).
    """
    users, n, r = index.shape
    flat = index.reshape(users, n * r)
    columns = np.arange(n * r)
    order = np.argsort(flat, axis=1, kind="stable")
    ranked = np.take_along_axis(flat, order, axis=1)
    starts = np.ones(ranked.shape, dtype=bool)
    starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    group_start = np.maximum.accumulate(np.where(starts, columns, 0), axis=1)
    first = np.empty_like(order)  # the column of each value's first use in the user's row
    np.put_along_axis(first, order, np.take_along_axis(order, group_start, axis=1), axis=1)
    is_first = (first == columns) & (flat >= 0)
    table = np.cumsum(is_first, axis=1) - 1  # position in the v table, at each first use
    local = np.where(flat >= 0, np.take_along_axis(table, first, axis=1), -1)
    units = np.where(flat >= 0, np.rint(weight.reshape(users, n * r) * WEIGHT_UNIT), 0).astype(np.int64)
    bounds = np.concatenate(([0], np.cumsum(is_first.sum(axis=1))))
    slots = np.arange(users) * n * r
    values = _join_rows(names, name_lengths, flat[is_first], bounds[:-1], bounds[1:])
    return (values, _join_numbers(local.ravel(), slots, slots + neighbours * r),
            _join_numbers(units.ravel(), slots, slots + neighbours * r))


def _join_rows(texts: list[str], lengths: np.ndarray, codes: np.ndarray, starts: np.ndarray,
               ends: np.ndarray) -> list[str]:
    """``",".join(texts[c] for c in codes[s:e])`` for every ``(s, e)`` of ``starts``, ``ends``, in one join
    and slices of it (each user's own join cost more than the rest of the item)."""
    joined = ",".join(map(texts.__getitem__, codes.tolist()))
    offsets = np.concatenate(([0], np.cumsum(lengths[codes] + 1)))  # where each code's text starts
    first, last = offsets[starts], np.maximum(offsets[ends] - 1, offsets[starts])
    return [joined[a:b] for a, b in zip(first.tolist(), last.tolist())]


def _join_numbers(numbers: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    """:func:`_join_rows` for integers (indices ≥ -1, thousandths ≤ 1,000: their texts from a table, ~4×
    cheaper than ``str`` each; any others, e.g. a model's negative weights, through their distinct values)."""
    low, high = (int(numbers.min()), int(numbers.max())) if numbers.size else (0, 0)
    if low >= -1 and high < _TABLE_LIMIT:
        texts, lengths = _decimal_texts(max(1024, 1 << high.bit_length()))
        return _join_rows(texts, lengths, numbers, starts, ends)
    distinct, codes = np.unique(numbers, return_inverse=True)
    texts = [str(number) for number in distinct.tolist()]
    return _join_rows(texts, np.array([len(t) for t in texts], dtype=np.int64), codes.ravel(), starts, ends)


@functools.cache
def _decimal_texts(size: int) -> tuple[list[str], np.ndarray]:
    """``str(i)`` for 0 ≤ i < ``size``, then "-1" last (so that index -1 reads it), and their lengths."""
    texts = [str(i) for i in range(size)] + ["-1"]
    return texts, np.array([len(t) for t in texts], dtype=np.int64)


def stored_size(attributes: dict[str, dict]) -> int:
    """The item's size as DynamoDB counts it (its 400 KB limit, its 1 KB write units): each attribute's
    name plus value, strings as UTF-8 bytes, numbers at most their text, lists and maps 3 bytes plus
    1 per element."""
    return sum(len(name.encode()) + _value_size(value) for name, value in attributes.items())


def _value_size(value: dict) -> int:
    (kind, inner), = value.items()
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in inner.items())
    return len(inner.encode()) if isinstance(inner, str) else len(inner)


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

    def _rows(self, reasons: Callable[[slice], Iterable[Any]], as_text: bool = False) -> Iterator[tuple[int, Any, Any, Any]]:
        """(user, neighbours, scores, what ``reasons`` gives for the user's row) per user with a neighbour.

        Arrays become Python lists a chunk of rows at a time: one ``tolist`` per chunk instead of
        numpy scalars per value (most of the cost of building items), memory bounded by the chunk;
        ``reasons`` converts the same chunk of rows of the explanations (one item per row).
        ``as_text``: neighbours and scores as their compact JSON texts instead (:func:`_list_texts`).
        """
        users, similar, scores = self.neighbours.users, self.neighbours.similar, self.neighbours.scores
        counts = (similar >= 0).sum(axis=1)
        if not np.array_equal(similar >= 0, np.arange(similar.shape[1]) < counts[:, None]):
            raise ValueError(f"{self.model_handle}: neighbour lists must be padded with -1 at the end only")
        for start in range(0, len(users), _CHUNK):
            rows = slice(start, start + _CHUNK)
            if as_text:
                listed = similar[rows] >= 0
                ids = _list_texts(*_int_texts(similar[rows][listed]), counts[rows])
                values = _list_texts(*_score_texts(scores[rows][listed]), counts[rows])
                chunk = zip(users[rows].tolist(), counts[rows].tolist(), ids, values, reasons(rows))
                yield from ((user, i, v, why) for user, k, i, v, why in chunk if k)
                continue
            chunk = zip(users[rows].tolist(), counts[rows].tolist(), similar[rows].tolist(), scores[rows].tolist(),
                        reasons(rows))
            for user, k, ids, values, why in chunk:
                if k:
                    yield user, ids[:k], [round(v, SCORE_DECIMALS) for v in values[:k]], why

    def _index(self, rows: slice) -> np.ndarray:
        """The reason indices of a chunk of rows, -1 past each user's last neighbour."""
        assert self.explanations is not None
        listed = self.neighbours.similar[rows] >= 0
        return np.where(listed[:, :, None], self.explanations.index[rows], -1)

    def __iter__(self) -> Iterator[StoredItem]:
        why = self.explanations
        if why is None:
            for user, similar, scores, _ in self._rows(lambda rows: repeat(None)):
                neighbours = tuple(Neighbour(u, s) for u, s in zip(similar, scores))
                yield StoredItem(user, self.model_handle, neighbours, self.run_id, self.generated_at)
            return
        kind, names = why.kind, [str(name) for name in why.names.tolist()]
        for user, similar, scores, (index, weight) in self._rows(
                lambda rows: zip(self._index(rows).tolist(), why.weight[rows].tolist())):
            neighbours = tuple(Neighbour(u, s, tuple(Reason(kind, names[j], w) for j, w in zip(i, wt) if j >= 0))
                               for u, s, i, wt in zip(similar, scores, index, weight))
            yield StoredItem(user, self.model_handle, neighbours, self.run_id, self.generated_at)

    def _items(self, as_text: bool = False) -> Iterator[tuple[int, Any, Any, str | None]]:
        """(user, neighbours, scores, packed reasons or None) of every item, reasons packed a chunk at a
        time; ``as_text``: the lists as their JSON texts (:meth:`_rows`)."""
        why = self.explanations
        if why is None:
            for user, similar, scores, _ in self._rows(lambda rows: repeat(None), as_text):
                yield user, similar, scores, None
            return
        kind, width = _dumps(why.kind), why.index.shape[2]
        names = [_dumps(str(name)) for name in why.names.tolist()]
        lengths = np.array([len(name) for name in names], dtype=np.int64)

        def packed_rows(rows: slice) -> Iterator[tuple[str, str, str]]:
            counts = (self.neighbours.similar[rows] >= 0).sum(axis=1)
            return zip(*_pack_arrays(self._index(rows), why.weight[rows], counts, names, lengths))

        for user, similar, scores, (values, ids, weights) in self._rows(packed_rows, as_text):
            yield user, similar, scores, _packed(kind, width, values, ids, weights) if values else None

    def dynamo_items(self) -> Iterator[dict[str, dict]]:
        """``item.to_dynamo()`` for every item, without building the items."""
        for user, similar, scores, reasons in self._items():
            yield _attributes(user, self.model_handle, similar, scores, reasons, self.run_id, self.generated_at)

    def import_lines(self) -> Iterator[str]:
        """Every item's line of ImportTable's DynamoDB JSON (``{"Item": <dynamo_items()'s attributes>}``),
        written as text without the attribute dicts (:func:`_import_line`): the export's hot path."""
        model = _dumps(self.model_handle)
        run = '"generated_at":{"S":' + _dumps(self.generated_at) + '},"run_id":{"S":' + _dumps(self.run_id) + "}"
        for user, similar, scores, reasons in self._items(as_text=True):
            yield _import_line(user, model, similar, scores, reasons, run)

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


__all__ = ["SCORE_DECIMALS", "ItemBlock", "Neighbour", "Reason", "StoredItem", "build_items", "stored_size"]
