"""The item codec: every stored form against an oracle (boto3's serializer, the json module, a
hand-packed reasons map), the bytes of the format as first written, and each form read back.

The random block has what the fast paths special-case: names that JSON must escape (quotes, a
backslash, non-ASCII, a tab), short rows padded with -1 and NaN, users without any neighbour or
without reasons, the largest handle, scores whose text is not ``0.`` and digits, a negative weight.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
from boto3.dynamodb.types import TypeSerializer

from recommender.reasons import Explanations
from recommender.store.codec import (WEIGHT_UNIT, dynamo_items, explained, from_dynamo, from_json_line, from_row,
                                     import_line, import_lines, json_line, to_dynamo, to_row)
from recommender.store.export import encode_part, read_part
from recommender.store.items import ItemBlock, Neighbour, Reason, StoredItem, build_items
from recommender.topk import Neighbours

BIG = 2**63 - 1
NAMES = ['c#', "it's", 'say "hi"', "naïve \\ path", "python", "日本", "tab\there"] + [f"t{i}" for i in range(300)]


def random_block(users: int = 3000, seed: int = 3, reasons: bool = True) -> ItemBlock:
    rng = np.random.default_rng(seed)
    n = 10
    similar = rng.integers(1, 2**40, size=(users, n))
    similar[::7, 6:] = -1  # short rows
    similar[::11, 1:] = -1
    similar[::13, :] = -1  # users without any neighbour
    similar[2, 0] = BIG
    scores = np.where(similar >= 0, np.sort(rng.random((users, n)), axis=1)[:, ::-1], np.nan).astype(np.float32)
    scores[0, :4] = [1.0, 5e-05, 0.0001, np.float32(0.1234565)]  # 1.0, exponent notation, a product near a half
    names = np.array(NAMES)
    index = np.where(rng.random((users, n, 3)) < 0.6, rng.integers(0, len(names), size=(users, n, 3)), -1)
    index[::5] = -1  # users without reasons
    weight = rng.random((users, n, 3)).round(3)
    weight[1, 0, 0] = -2.25
    explanations = Explanations("tag", names, index, weight) if reasons else None
    answer = Neighbours(np.arange(1, users + 1, dtype=np.int64) * 3, similar.astype(np.int64), scores)
    return build_items("tfidf_user_interest", answer, "20260101T000000Z-codec000", 'gen "q"', explanations)


def objects() -> list[StoredItem]:
    """Items as tools and tests build them: mixed kinds, more than three reasons, unrounded floats."""
    many = tuple(Reason("course", f"c{i}", round(0.1 * i, 3)) for i in range(1, 6))
    return [
        StoredItem(7, "m", (Neighbour(1, 0.5, (Reason("tag", "python", 0.31), Reason("model", "knn", 0.5))),
                            Neighbour(2, 0.4, many)), "r", "g"),
        StoredItem(BIG, "tfidf", (
            Neighbour(BIG, 0.1 + 0.2, (Reason("tag", 'py"th\\on', 0.31), Reason("tag", "c#", 0.05))),
            Neighbour(2, 1e-06, (Reason("tag", "python", 0.002),)), Neighbour(3, 0.5)), "run", "2026"),
        StoredItem.of(5, "x", [(1, 0.25), (9, 1.0)]),
    ]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- the same bytes as the format as first written -------------------------------------------------

#: sha256 of each form of ``random_block()`` / ``random_block(seed=5, reasons=False)`` / ``objects()``,
#: as written by the encoders before they became one codec (attribute values as their JSON, in
#: attribute order).  A change here is a change of the stored format: old runs and readers see it.
FIRST_WRITTEN = {
    ("reasons", "dynamo"): "c0f00ef46a97e710c188fcaac2253ddc0d8953f5ca68e515fcf60f94188a0327",
    ("reasons", "import"): "9f0a54e608cb10d987c47c65922ee406f6b390efc1a644d687d09d8b0ed7ee92",
    ("reasons", "json"): "20bae12d773d33a9d3728709d8e2bfb7a05990e5015a3e291c6e4be6e483af5e",
    ("plain", "dynamo"): "503eb4e4d229abd65e81f470136c9b9cf59a0e4ebff8ae194012b9574304d878",
    ("plain", "import"): "f961ab812e460ffd07d4d6761eb3a0c85cd960e8d15ba1a86e59f0fad14fa3c6",
    ("plain", "json"): "78cf5c2fe5a884b85b206e093550f214ff1c6e1fb94c7ae448f912aed46245f2",
    ("objects", "dynamo"): "821f6657855b6513f364a5a1e26c37063b6dd9cc1b59067b748658f1378a3028",
    ("objects", "import"): "bee2543fb6151461e164409a9ad622e9117df70b2ed0064f862fc8431f8ef7d4",
    ("objects", "json"): "ba9412ef431e08ee236102ab89c7bbda6ee2de0fa0c2d0b970a23d740418382e",
}


@pytest.mark.parametrize("name", ["reasons", "plain", "objects"])
def test_every_form_keeps_the_bytes_first_written(name):
    if name == "objects":
        items = objects()
        forms = {"dynamo": [to_dynamo(i) for i in items], "import": "".join(map(import_line, items))}
    else:
        items = list(block := random_block() if name == "reasons" else random_block(seed=5, reasons=False))
        forms = {"dynamo": list(dynamo_items(block)), "import": "".join(import_lines(block))}
    forms["json"] = "".join(map(json_line, items))
    got = {("dynamo", digest(json.dumps(forms["dynamo"]))), ("import", digest(forms["import"])),
           ("json", digest(forms["json"]))}
    assert got == {(form, FIRST_WRITTEN[name, form]) for form in ("dynamo", "import", "json")}


# -- against an oracle ---------------------------------------------------------------------------

def packed_oracle(item: StoredItem) -> dict | None:
    """The packed reasons map built by hand: the kind once, values in order of first use, fixed-width slots."""
    if not any(n.reasons for n in item.neighbours):
        return None
    width = max(3, *(len(n.reasons) for n in item.neighbours))
    values: list[tuple[str, str]] = []
    ids, weights = [], []
    for n in item.neighbours:
        for r in n.reasons:
            if (r.kind, r.value) not in values:
                values.append((r.kind, r.value))
        ids += [values.index((r.kind, r.value)) for r in n.reasons] + [-1] * (width - len(n.reasons))
        weights += [round(r.weight * WEIGHT_UNIT) for r in n.reasons] + [0] * (width - len(n.reasons))
    kinds = {kind for kind, _ in values}
    head = {"k": kinds.pop()} if len(kinds) == 1 else {}
    listed = [value for _, value in values] if head else [list(v) for v in values]
    return {**head, "n": width, "v": listed, "i": ids, "w": weights}


def attributes_oracle(item: StoredItem) -> dict:
    plain = {"user_handle": item.user_handle, "model_handle": item.model_handle,
             "similar_users": json.dumps(item.similar_users, separators=(",", ":")),
             "scores": json.dumps(item.scores, separators=(",", ":")),
             "generated_at": item.generated_at, "run_id": item.run_id}
    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in plain.items()}


def left_packed(block: ItemBlock) -> ItemBlock:
    """``block`` with each neighbour's reasons in its first slots, as the models explain (the random
    block leaves holes between them, which the packed text keeps and an item does not)."""
    why = block.explanations
    order = np.argsort(why.index < 0, axis=2, kind="stable")
    return replace(block, explanations=replace(why, index=np.take_along_axis(why.index, order, axis=2),
                                               weight=np.take_along_axis(why.weight, order, axis=2)))


@pytest.mark.parametrize("source", ["block", "objects"])
def test_every_form_is_what_boto3_and_the_json_module_make_of_the_item(source):
    block = left_packed(random_block(600))
    items = list(block) if source == "block" else objects()
    attributes = list(dynamo_items(block)) if source == "block" else [to_dynamo(i) for i in items]
    lines = list(import_lines(block)) if source == "block" else [import_line(i) for i in items]
    assert len(attributes) == len(lines) == len(items) > 2
    for item, values, line in zip(items, attributes, lines):
        packed = values.pop("reasons", None)
        assert values == attributes_oracle(item) and list(values) == list(attributes_oracle(item))
        assert (json.loads(packed["S"]) if packed else None) == packed_oracle(item)
        if packed:
            values["reasons"] = packed
        assert line == '{"Item":' + json.dumps(values, separators=(",", ":")) + "}\n"
        record = {"user_handle": item.user_handle, "model_handle": item.model_handle,
                  "similar_users": item.similar_users, "scores": item.scores,
                  "generated_at": item.generated_at, "run_id": item.run_id}
        if any(n.reasons for n in item.neighbours):
            record["reasons"] = [[{"kind": r.kind, "value": r.value, "weight": r.weight} for r in n.reasons]
                                 for n in item.neighbours]
        assert json_line(item) == json.dumps(record, separators=(",", ":")) + "\n"


# -- each form read back ---------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["block", "plain block", "objects"])
def test_every_form_reads_back_as_the_item(source):
    block = random_block(800, reasons=source != "plain block")
    items = objects() if source == "objects" else list(block)
    if source != "objects":  # the array encoders read back as the block's items
        assert [from_dynamo(a) for a in dynamo_items(block)] == items
        assert [from_dynamo(a) for a in read_part(encode_part(import_lines(block))[0])] == items
    assert [from_dynamo(to_dynamo(i)) for i in items] == items
    assert [from_dynamo(a) for a in read_part(encode_part(map(import_line, items))[0])] == items
    assert [from_json_line(json_line(i)) for i in items] == items
    assert [from_row(to_row(i)) for i in items] == items
    lazy = [from_dynamo(to_dynamo(i), reasons=False) for i in items]  # the API's read: reasons left packed
    assert [from_row(to_row(i)) for i in lazy] == lazy and [explained(i) for i in lazy] == items
    assert any(n.reasons for i in items for n in i.neighbours) == (source != "plain block")
