"""The exposure log's writes on the real DynamoDB Local: conditional, so nothing replaces a stored
exposure (the first one with a request id stands, in memory and in the table)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from recommender.experiments.exposures import Event, Exposure, ExposureLog, writer_store

pytestmark = pytest.mark.dynamodb


def writes(kind: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("similar_users_ab_log_writes_total", {"kind": kind, "outcome": outcome}) or 0.0


def exposure(request_id: str, user: int) -> Exposure:
    return Exposure(request_id, user, "exp-1", "views", "views", "tfidf_user_interest", (user + 1, user + 2))


def test_an_exposure_is_never_overwritten(local_settings):
    log = ExposureLog(writer_store(local_settings))
    written, conflicts = writes("exposure", "written"), writes("exposure", "conflict")
    log.record(exposure("r-1", 42))
    assert log.flush()
    log.record(exposure("r-1", 43))  # the same id again: refused by DynamoDB, ignored in memory
    assert log.flush()
    assert (writes("exposure", "written") - written, writes("exposure", "conflict") - conflicts) == (1, 1)
    assert log.find("r-1").user_handle == 42
    stored = log.store.client.get_item(TableName=log.exposures_table, Key={"request_id": {"S": "r-1"}},
                                       ConsistentRead=True)["Item"]
    assert stored["user_handle"]["N"] == "42"
    assert ExposureLog(writer_store(local_settings)).find("r-1").user_handle == 42  # another process


def test_many_exposures_and_events_are_all_written_once(local_settings):
    log = ExposureLog(writer_store(local_settings))
    shown = [exposure(f"r-{i}", i) for i in range(60)]  # more than one round of the writer
    for item in shown:
        log.record(item)
    for item in shown[:30]:
        log.record(Event(item, item.similar_users[0], "click"))
        log.record(Event(item, item.similar_users[0], "click"))  # sent twice: stored once
    assert log.flush()
    client = log.store.client
    assert client.scan(TableName=log.exposures_table, Select="COUNT", ConsistentRead=True)["Count"] == 60
    assert client.scan(TableName=log.events_table, Select="COUNT", ConsistentRead=True)["Count"] == 30
    fresh = ExposureLog(writer_store(local_settings))
    assert [fresh.find(item.request_id) for item in shown] == shown
