"""The stored shape: lists as compact JSON strings, reasons packed as integers, and the array path
(ItemBlock) gives exactly the items and attribute values of the object path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.api import create_app
from recommender.reasons import Explanations
from recommender.store import codec, items as items_module
from recommender.store.dynamo import DynamoStore
from recommender.store.codec import (dynamo_items, explained, from_dynamo, import_lines, json_line, stored_size,
                                     to_dynamo)
from recommender.store.items import ItemBlock, Neighbour, Reason, StoredItem, build_items
from recommender.store.publisher import RunPublisher
from recommender.topk import Neighbours, similar_users

TFIDF = "tfidf_user_interest"
BIG = 2**63 - 1  # the largest handle (data/schema.py): must stay exact, never through a float


def reasoned_item(user: int = 7, run_id: str = "20260101T000000Z-items000") -> StoredItem:
    return StoredItem(user, TFIDF, (
        Neighbour(BIG, 0.1 + 0.2, (Reason("tag", "python", 0.31), Reason("tag", "c#", 0.05))),
        Neighbour(2, 1e-06, (Reason("tag", "python", 0.002),)),
        Neighbour(3, 0.5),
    ), run_id, "2026-01-01T00:00:00Z")


def test_lists_are_stored_as_compact_json_strings_and_read_back_exactly():
    item = reasoned_item()
    attributes = to_dynamo(item)
    assert attributes["similar_users"] == {"S": f"[{BIG},2,3]"}
    assert attributes["scores"] == {"S": "[0.30000000000000004,1e-06,0.5]"}  # repr: the same float back
    # the kind once, each value once, then 3 slots per neighbour: index into v (-1: none), weight in thousandths
    assert json.loads(attributes["reasons"]["S"]) == {"k": "tag", "n": 3, "v": ["python", "c#"],
                                                     "i": [0, 1, -1, 0, -1, -1, -1, -1, -1],
                                                     "w": [310, 50, 0, 2, 0, 0, 0, 0, 0]}
    assert from_dynamo(attributes) == item
    assert "reasons" not in to_dynamo(StoredItem.of(1, TFIDF, [(2, 0.5)]))


def test_reasons_left_packed_until_asked_read_back_the_same():
    """The API reads items with ``reasons=False``: the neighbours at once, the reasons when an explain asks."""
    item = reasoned_item()
    lazy = from_dynamo(to_dynamo(item), reasons=False)
    assert lazy.pending_reasons is not None and all(n.reasons == () for n in lazy.neighbours)
    assert lazy.similar_users == item.similar_users and lazy.scores == item.scores
    assert explained(lazy) == item
    assert to_dynamo(lazy) == to_dynamo(item) and json_line(lazy) == json_line(item)
    plain = StoredItem.of(1, TFIDF, [(2, 0.5)])
    assert from_dynamo(to_dynamo(plain), reasons=False) == plain == explained(plain)


def test_reasons_of_mixed_kinds_and_more_than_three_per_neighbour_read_back():
    many = tuple(Reason("course", f"c{i}", round(0.1 * i, 3)) for i in range(1, 6))
    item = StoredItem(7, "m", (Neighbour(1, 0.5, (Reason("tag", "python", 0.31), Reason("model", "knn", 0.5))),
                               Neighbour(2, 0.4, many)), "r", "g")
    packed = json.loads(to_dynamo(item)["reasons"]["S"])
    assert "k" not in packed and packed["v"][:2] == [["tag", "python"], ["model", "knn"]] and packed["n"] == 5
    assert from_dynamo(to_dynamo(item)) == item


def test_a_run_written_through_boto3_is_served_by_the_api_with_its_reasons(local_settings):
    """The stored shape end to end: the batch writer puts it through botocore, the API reads it back."""
    settings = local_settings.model_copy(update={"pointer_cache_seconds": 0})
    items = [reasoned_item(user) for user in (7, 8)]
    publisher = RunPublisher(DynamoStore.for_generator(settings))
    publisher.begin(items[0].run_id, (TFIDF,))
    assert publisher.write(TFIDF, items) == 2
    publisher.commit({TFIDF: 2})
    publisher.finish()
    stored = DynamoStore.for_generator(settings).client.get_item(
        TableName=publisher.table, Key={"user_handle": {"N": "7"}, "model_handle": {"S": TFIDF}})["Item"]
    assert stored["similar_users"] == {"S": f"[{BIG},2,3]"} and set(stored["reasons"]) == {"S"}

    response = create_app(settings).test_client().post("/similar-users/", json={"user_handle": 7, "explain": True})
    assert response.status_code == 200, response.get_data(as_text=True)
    (answer,) = response.get_json()
    assert answer["similar_users"] == [BIG, 2, 3] and answer["scores"] == [0.30000000000000004, 1e-06, 0.5]
    assert [r["value"] for r in answer["neighbours"][0]["reasons"]] == ["python", "c#"]


@pytest.fixture(scope="module")
def tfidf_block(small_tables) -> ItemBlock:
    from recommender.models.tfidf_interest import TfidfUserInterest

    model = TfidfUserInterest().fit(small_tables)
    answer = similar_users(model, 10)
    return build_items(TFIDF, answer, "20260101T000000Z-items001", "2026-01-01T00:00:00Z", model.explain(answer))


def test_the_array_path_gives_the_items_of_the_object_path(tfidf_block):
    answer, why = tfidf_block.neighbours, tfidf_block.explanations
    rows = np.flatnonzero((answer.similar >= 0).any(axis=1))
    expected = [  # built the way the generator built items before ItemBlock: rows() + for_row()
        StoredItem(user, TFIDF, tuple(Neighbour(u, s, tuple(Reason(*r) for r in w))
                                      for u, s, w in zip(similar, scores, why.for_row(int(row), len(similar)))),
                   tfidf_block.run_id, tfidf_block.generated_at)
        for row, (user, similar, scores) in zip(rows, answer.rows())
    ]
    items = list(tfidf_block)
    assert items == expected and len(tfidf_block) == len(items) > 500
    assert any(n.reasons for i in items for n in i.neighbours)
    assert list(dynamo_items(tfidf_block)) == [to_dynamo(i) for i in items]
    # every weight (3 decimals, stored in thousandths) and name reads back exactly
    assert [from_dynamo(a) for a in dynamo_items(tfidf_block)] == items


def test_chunks_of_rows_give_the_same_attribute_values(tfidf_block, monkeypatch):
    whole = list(dynamo_items(tfidf_block))
    monkeypatch.setattr(items_module, "_CHUNK", 7)  # many chunks: each packs its own texts
    assert list(dynamo_items(tfidf_block)) == whole


def test_the_array_path_packs_any_weight_and_leaves_out_users_without_reasons():
    answer = Neighbours(np.array([1, 2, 3]), np.array([[2, 3], [1, -1], [1, 2]]),
                        np.array([[0.9, 0.5], [0.9, np.nan], [0.5, 0.4]], dtype=np.float32))
    index = np.array([[[0, 1, -1], [1, -1, -1]], [[-1] * 3, [-1] * 3], [[2, -1, -1], [0, 2, -1]]])
    weight = np.array([[[0.5, -2.25, 0], [7.125, 0, 0]], [[0] * 3] * 2, [[0.001, 0, 0], [0.3, 0.2, 0]]])
    block = build_items(TFIDF, answer, "r", "g", Explanations("tag", np.array(["a", "b", 'c "q"']), index, weight))
    items = list(block)
    attributes = list(dynamo_items(block))
    assert attributes == [to_dynamo(i) for i in items] and "reasons" not in attributes[1]
    assert [from_dynamo(a) for a in attributes] == items
    assert [r.weight for r in items[0].neighbours[0].reasons] == [0.5, -2.25]
    assert items[2].neighbours[0].reasons == (Reason("tag", 'c "q"', 0.001),)


def test_slices_cover_every_item_once_and_carry_only_the_names_they_use(tfidf_block):
    parts = list(tfidf_block.split(97))
    assert len(parts) == -(-len(tfidf_block.neighbours.users) // 97)
    assert [i for part in parts for i in part] == list(tfidf_block)
    assert [a for part in parts for a in dynamo_items(part)] == list(dynamo_items(tfidf_block))
    assert all(len(p.explanations.names) < len(tfidf_block.explanations.names) for p in parts)


def test_items_with_reasons_stay_under_4_kb_at_n_10(tfidf_block):
    # DynamoDB's size: attribute names plus values (strings: their UTF-8 bytes)
    sizes = [stored_size(a) for a in dynamo_items(tfidf_block)]
    assert 0 < max(sizes) < 4096, max(sizes)
    assert stored_size({"ab": {"S": "é"}, "c": {"N": "12"}, "d": {"L": [{"S": "x"}]}}) == 2 + 2 + 1 + 2 + 1 + 3 + 2


def test_lists_padded_anywhere_but_the_end_are_refused():
    holes = Neighbours(np.array([1]), np.array([[2, -1, 3]]), np.array([[0.5, np.nan, 0.4]], dtype=np.float32))
    with pytest.raises(ValueError, match="padded with -1 at the end only"):
        list(dynamo_items(build_items(TFIDF, holes, "r", "g")))


def test_import_lines_are_the_json_of_the_attribute_values_byte_for_byte(tfidf_block):
    n = tfidf_block.neighbours
    # scores whose text is not "0." and digits: 1.0, exponent notation, a product near a rounding half
    scores = n.scores.copy()
    scores[0, :4] = [1.0, 5e-05, 0.0001, np.float32(0.1234565)]
    scores[1, :3] = [0.5, 1.2e-05, 0.999999]
    edged = ItemBlock(TFIDF, Neighbours(n.users, n.similar, scores), tfidf_block.run_id, 'gen "quoted"',
                      tfidf_block.explanations)
    for block in (edged, ItemBlock(TFIDF, edged.neighbours, "r", "g")):  # with and without reasons
        assert "".join(import_lines(block)) == "".join('{"Item":' + json.dumps(a, separators=(",", ":")) + "}\n"
                                                       for a in dynamo_items(block))


def test_score_texts_are_the_stored_floats_texts():
    rng = np.random.default_rng(4)
    scores = np.concatenate([rng.random(50_000), rng.random(5_000) * 1e-3, np.arange(1, 20_001) / 2e4,
                             [1.0, 1e-6, 0.0001, 0.00015, 0.5, 0.1234565, 0.0000005]]).astype(np.float32)
    joined, lengths = codec._score_texts(scores)
    expected = [repr(round(v, 6)) for v in scores.astype(np.float64).tolist()]
    assert joined == ",".join(expected) and lengths.tolist() == [len(t) for t in expected]
