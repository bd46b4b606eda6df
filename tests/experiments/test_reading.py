"""The report reads back what the exposure log writes (real DynamoDB Local), whatever else the tables hold."""

from __future__ import annotations

from recommender.experiments import reading
from recommender.experiments.exposures import Event, Exposure, create_tables, table_names, writer_store


def test_exposures_and_events_of_one_experiment_read_back(local_settings):
    store = writer_store(local_settings)
    assert reading.read(store, "exp")[0].empty  # nothing recorded yet: empty frames, no error
    create_tables(store)
    exposures_table, events_table = table_names(store.prefix)
    shown = Exposure("r1", 2**63 - 1, "exp", "a", "a", "tfidf_user_interest", (4, 5, 6))
    other = Exposure("r2", 8, "another", "b", "fallback", "tfidf_user_interest", (4,))
    for exposure in (shown, other):
        store.client.put_item(TableName=exposures_table, Item=exposure.to_dynamo())
    for event in (Event(shown, 5, "click"), Event(other, 4, "click")):
        store.client.put_item(TableName=events_table, Item=event.to_dynamo())

    exposures, events = reading.read(store, "exp")
    assert exposures.to_dict("records") == [{"request_id": "r1", "user_handle": 2**63 - 1, "arm": "a", "variant": "a",
                                             "model_handle": "tfidf_user_interest", "shown": 3}]
    assert events.to_dict("records") == [{"request_id": "r1", "similar_user_handle": 5, "event": "click", "variant": "a"}]
