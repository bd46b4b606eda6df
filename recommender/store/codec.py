"""One codec for an item: every form a stored item takes, to and from, and nothing else writes them.

The forms:

* **DynamoDB attribute values** (:func:`to_dynamo`, :func:`dynamo_items`; read by
  :func:`from_dynamo`, the API's read path): what the write path puts;
* **an import line** (:func:`import_line`, :func:`import_lines`): ImportTable's DynamoDB JSON,
  ``{"Item": <the attribute values>}`` and a newline, byte for byte the JSON of the attribute
  values (the export, :mod:`recommender.store.export`, whose ``read_part`` reads them back);
* **a JSON line** (:func:`json_line`; read by :func:`from_json_line`): the dry-run sink's readable
  record, lists as JSON lists and the reasons as ``{"kind", "value", "weight"}`` maps;
* **a row** (:func:`to_row`; read by :func:`from_row`): the flat tuple the API's item cache keeps.

Each item form is built from the same parts: the user, the model handle, the neighbours' and
the scores' compact JSON texts, the packed reasons (:func:`pack_reasons`) and the run's two
strings.  A :class:`~recommender.store.items.ItemBlock` (a model's arrays) gets its parts a chunk
of rows at a time, as text straight from the arrays (:func:`_block_parts`: numbers joined once per
chunk and sliced per item, scores' digits from a byte matrix, reasons packed without a loop per
neighbour), which is the writer's hot path; a :class:`~recommender.store.items.StoredItem` gets
them from its lists.

In DynamoDB each list is **one string attribute holding compact JSON** (``"[4254,9796]"``,
``"[0.978627,0.977795]"``), not a ``L`` list of ``N`` numbers: every attribute value is walked
by botocore's serializer and parsed again by the database, and twenty ``N`` values per item made
the write path much more expensive on both sides (``benchmarks/results/write.json``).  The
reasons are one more string, integers but for the names (:func:`pack_reasons`): with float
weights and nested lists they roughly doubled the client's CPU per item; packed this way they add
little (measured at ``30343a5``, docs/benchmarks.md).  The attribute values are written here as the
dicts they are (``{"N": text}``, ``{"S": text}``), not through boto3's serializer
(:mod:`recommender.store.marshal`, for the control rows): the same values, without walking
every attribute once more per item.  Only the current shape is read (docs/storage.md, "Stored
shapes").
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import repeat
from typing import Any

import numpy as np

from recommender.reasons import MAX_REASONS
from recommender.search.neighbours import SCORE_DECIMALS
from recommender.store.items import ItemBlock, Neighbour, Reason, StoredItem
from recommender.store.marshal import from_attributes

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


# -- the forms, from an item's parts ---------------------------------------------------------------

def _attributes(user: int, model: str, similar: str, scores: str, reasons: str | None, run_id: str,
                generated_at: str) -> dict[str, dict]:
    """The one layout of the stored attributes; ``similar`` and ``scores`` are the lists' JSON texts."""
    item = {
        "user_handle": {"N": str(user)},
        "model_handle": {"S": model},
        "similar_users": {"S": similar},
        "scores": {"S": scores},  # float repr: the shortest text that reads back the same float
        "generated_at": {"S": generated_at},
        "run_id": {"S": run_id},
    }
    if reasons is not None:
        item["reasons"] = {"S": reasons}
    return item


def _run_text(run_id: str, generated_at: str) -> str:
    """The ``generated_at`` and ``run_id`` attributes of an import line (the same for a whole block)."""
    return '"generated_at":{"S":' + _dumps(generated_at) + '},"run_id":{"S":' + _dumps(run_id) + "}"


def _import_line(user: int, model: str, similar: str, scores: str, reasons: str | None, run: str) -> str:
    """``'{"Item":' + JSON of _attributes(...) + '}\\n'``, written as text; ``model`` is the model handle
    as JSON and ``run`` is :func:`_run_text`.  Why not the JSON of the dicts: building and encoding
    them was most of an export's CPU per item; the lists' texts hold nothing to escape, and the
    packed reasons are one string."""
    why = "" if reasons is None else ',"reasons":{"S":' + _dumps(reasons) + "}"
    return ('{"Item":{"user_handle":{"N":"' + str(user) + '"},"model_handle":{"S":' + model + '},"similar_users":{"S":"'
            + similar + '"},"scores":{"S":"' + scores + '"},' + run + why + "}}\n")


def _item_parts(item: StoredItem) -> tuple[StoredItem, str, str, str | None]:
    """The item with its reasons decoded, its lists' JSON texts and its packed reasons."""
    item = explained(item)
    return item, _dumps(item.similar_users), _dumps(item.scores), pack_reasons([n.reasons for n in item.neighbours])


def to_dynamo(item: StoredItem) -> dict[str, dict]:
    """The item's DynamoDB attribute values."""
    item, similar, scores, reasons = _item_parts(item)
    return _attributes(item.user_handle, item.model_handle, similar, scores, reasons, item.run_id, item.generated_at)


def import_line(item: StoredItem) -> str:
    """The item's line of ImportTable's DynamoDB JSON."""
    item, similar, scores, reasons = _item_parts(item)
    return _import_line(item.user_handle, _dumps(item.model_handle), similar, scores, reasons,
                        _run_text(item.run_id, item.generated_at))


def json_line(item: StoredItem) -> str:
    """The item's dry-run line: plain ints, floats and strings; ``reasons`` only when some neighbour has one."""
    item = explained(item)
    record: dict[str, Any] = {
        "user_handle": item.user_handle,
        "model_handle": item.model_handle,
        "similar_users": item.similar_users,
        "scores": item.scores,
        "generated_at": item.generated_at,
        "run_id": item.run_id,
    }
    if any(n.reasons for n in item.neighbours):
        record["reasons"] = [[r.to_dict() for r in n.reasons] for n in item.neighbours]
    return _dumps(record) + "\n"


def to_row(item: StoredItem) -> tuple:
    """``item`` as one flat tuple of numbers and strings, which the garbage collector stops tracking
    at the first collection that sees it (a nested tuple needs one collection per level); decoded
    reasons, which the API's reads never have (they stay ``pending_reasons``), nest."""
    reasons = (tuple(tuple(tuple(r) for r in n.reasons) for n in item.neighbours)
               if any(n.reasons for n in item.neighbours) else None)
    return (item.user_handle, item.model_handle, item.run_id, item.generated_at, item.pending_reasons, reasons,
            *(n.user_handle for n in item.neighbours), *(n.score for n in item.neighbours))


# -- the forms, from a model's arrays (the hot path) -----------------------------------------------

def _block_parts(block: ItemBlock) -> Iterator[tuple[int, str, str, str | None]]:
    """(user, neighbours' JSON, scores' JSON, packed reasons or None) of every item of ``block``.

    A chunk of rows at a time (:meth:`ItemBlock.chunks`): the neighbours and scores of the chunk
    become text in one join each, sliced per user (:func:`_list_texts`), and the reasons are
    packed for the whole chunk (:func:`_pack_arrays`)."""
    n, why = block.neighbours, block.explanations
    if why is not None:
        kind, width = _dumps(why.kind), why.index.shape[2]
        names = [_dumps(str(name)) for name in why.names.tolist()]
        lengths = np.array([len(name) for name in names], dtype=np.int64)
    for rows, counts in block.chunks():
        listed = n.similar[rows] >= 0
        ids = _list_texts(*_int_texts(n.similar[rows][listed]), counts)
        values = _list_texts(*_score_texts(n.scores[rows][listed]), counts)
        reasons: Any = repeat(None)
        if why is not None:
            packed = zip(*_pack_arrays(block.reason_index(rows), why.weight[rows], counts, names, lengths))
            reasons = (_packed(kind, width, v, i, w) if v else None for v, i, w in packed)
        for user, k, similar, scores, why_packed in zip(n.users[rows].tolist(), counts.tolist(), ids, values, reasons):
            if k:
                yield user, similar, scores, why_packed


def dynamo_items(block: ItemBlock) -> Iterator[dict[str, dict]]:
    """:func:`to_dynamo` of every item of ``block``, without building the items (the writer's hot path)."""
    model, run_id, generated_at = block.model_handle, block.run_id, block.generated_at
    for user, similar, scores, reasons in _block_parts(block):
        yield _attributes(user, model, similar, scores, reasons, run_id, generated_at)


def import_lines(block: ItemBlock) -> Iterator[str]:
    """:func:`import_line` of every item of ``block``, without the items or their dicts (the export's hot path)."""
    model, run = _dumps(block.model_handle), _run_text(block.run_id, block.generated_at)
    for user, similar, scores, reasons in _block_parts(block):
        yield _import_line(user, model, similar, scores, reasons, run)


# -- reading -----------------------------------------------------------------------------------------

def _item(record: dict[str, Any], users: Sequence[Any], scores: Sequence[Any], reasons: Sequence[tuple[Reason, ...]],
          pending_reasons: str | None = None) -> StoredItem:
    neighbours = tuple(Neighbour(int(u), float(s), why)
                       for u, s, why in zip(users, scores, reasons or repeat((), len(users))))
    return StoredItem(
        user_handle=int(record["user_handle"]),
        model_handle=str(record["model_handle"]),
        neighbours=neighbours,
        run_id=str(record.get("run_id", "")),
        generated_at=str(record.get("generated_at", "")),
        pending_reasons=pending_reasons,
    )


def from_dynamo(attributes: dict[str, dict], *, reasons: bool = True) -> StoredItem:
    """The item from its attribute values.  ``reasons=False`` leaves the reasons undecoded in
    ``pending_reasons`` (:func:`explained`): what the API does, until an explain asks."""
    record = from_attributes(attributes)
    users, scores = json.loads(record["similar_users"]), json.loads(record["scores"])
    packed = record.get("reasons")
    if packed is None:
        return _item(record, users, scores, ())
    if not reasons:
        return _item(record, users, scores, (), pending_reasons=packed)
    return _item(record, users, scores, unpack_reasons(packed))


def from_json_line(line: str) -> StoredItem:
    """The item of one dry-run line."""
    record = json.loads(line)
    reasons: Sequence[Any] = record.get("reasons") or ()
    return _item(record, record.get("similar_users") or [], record.get("scores") or [],
                 [tuple(Reason(str(r["kind"]), str(r["value"]), float(r["weight"])) for r in why) for why in reasons])


def from_row(entry: tuple) -> StoredItem:
    """The item of :func:`to_row`'s tuple."""
    user_handle, model_handle, run_id, generated_at, pending, reasons = entry[:6]
    count = (len(entry) - 6) // 2
    users, scores = entry[6:6 + count], entry[6 + count:]
    why = reasons or ((),) * count
    neighbours = tuple(Neighbour(u, s, tuple(Reason(*r) for r in w)) for u, s, w in zip(users, scores, why))
    return StoredItem(user_handle, model_handle, neighbours, run_id, generated_at, pending)


def explained(item: StoredItem) -> StoredItem:
    """``item`` with its pending reasons decoded (itself when there is nothing pending)."""
    if item.pending_reasons is None:
        return item
    reasons = unpack_reasons(item.pending_reasons)
    neighbours = tuple(Neighbour(n.user_handle, n.score, why) for n, why in zip(item.neighbours, reasons))
    return replace(item, neighbours=neighbours, pending_reasons=None)


# -- the packed reasons ------------------------------------------------------------------------------

def pack_reasons(reasons: Sequence[Sequence[tuple[str, str, float]]]) -> str | None:
    """Each neighbour's ``(kind, value, weight)`` reasons as one compact JSON string; None when there are none.

    ``{"k": "tag", "n": 3, "v": ["python", "c#"], "i": [0, 1, -1, 0, -1, -1], "w": [310, 50, 0, 2, 0, 0]}``:
    the kind once (a model's reasons share it; mixed kinds write ``v`` as ``[kind, value]`` pairs
    and no ``k``), each distinct value once (the same tag or course often explains several
    neighbours), then ``n`` slots per neighbour: the index into ``v`` (-1: none) and the weight in
    :data:`WEIGHT_UNIT`.  Why not DynamoDB lists of maps: 30 maps per item cut DynamoDB Local's
    write rate to under a third (botocore and the server both walk every map).  Why
    flat rows of integers: the earlier ``{"v": [[kind, value], ...], "r": [[[index, 0.31], ...],
    ...]}`` spent most of a reasoned item's cost on float texts and nested lists, and fixed-width
    rows come straight from the arrays (:func:`_pack_arrays`, which this packs one item with)
    without a Python loop per neighbour.  Why not compressed (zlib into a ``B`` attribute): it
    saves about a third of the bytes but costs more client CPU per item than the packing, and
    DynamoDB Local's CPU per item did not measurably depend on the reasons
    (measured at ``30343a5``).
    """
    if not any(reasons):
        return None
    width = max(MAX_REASONS, *(len(why) for why in reasons))
    codes: dict[tuple[str, str], int] = {}  # each distinct (kind, value), in the order of first use
    index = np.full((1, len(reasons), width), -1, dtype=np.int64)
    weight = np.zeros((1, len(reasons), width), dtype=np.float64)
    for row, why in enumerate(reasons):
        for column, (kind, value, w) in enumerate(why):
            index[0, row, column] = codes.setdefault((kind, value), len(codes))
            weight[0, row, column] = w
    kinds = {kind for kind, _ in codes}
    kind = _dumps(kinds.pop()) if len(kinds) == 1 else None
    names = [_dumps(value) for _, value in codes] if kind else [_dumps(list(key)) for key in codes]
    lengths = np.array([len(name) for name in names], dtype=np.int64)
    (values,), (ids,), (weights,) = _pack_arrays(index, weight, np.array([len(reasons)]), names, lengths)
    return _packed(kind, width, values, ids, weights)


def _packed(kind: str | None, width: int, values: str, ids: str, weights: str) -> str:
    """The packed text from its parts, each already JSON, lists without brackets."""
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


# -- numbers as text, a chunk at a time --------------------------------------------------------------

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
    """The JSON of ``round(score, SCORE_DECIMALS)`` for every score (what an item stores) joined by ",",
    and their lengths, written as digits in a byte matrix instead of a float's text each (the
    per-value ``round`` and ``repr`` were most of an item's text).

    A rounded score ``k / 10**d`` of 10**-4 ≤ score < 1 reads ``0.`` and the ``d`` digits of ``k``
    without trailing zeros (the shortest text of the nearest float).  ``k`` is ``score * 10**d``
    rounded, which is Python's decimal rounding unless the product is within 1e-6 of a half; such
    scores, and the others (1.0, below 10**-4: exponent notation; not finite), take the JSON
    encoder's text of ``round(...)``.
    """
    d = SCORE_DECIMALS
    scaled = scores.astype(np.float64) * 10.0**d
    k = np.floor(scaled + 0.5).astype(np.int64)
    plain = (k >= 10 ** (d - 2)) & (k < 10**d) & (np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6)
    digits = (k[:, None] // 10 ** np.arange(d - 1, -1, -1)) % 10
    trailing = np.argmax(np.cumsum(digits[:, ::-1], axis=1) > 0, axis=1)  # zeros at the end (k > 0)
    others = np.flatnonzero(~plain)
    texts = [_dumps(round(v, d)) for v in scores[others].astype(np.float64).tolist()]
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


# -- size ------------------------------------------------------------------------------------------------

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
