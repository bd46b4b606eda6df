"""Reading an experiment's exposures and events back from DynamoDB, for the report.

Both tables are keyed by request (what feedback validation needs), so the report scans them
with a filter on the experiment: a scan reads the whole table, which is acceptable for an
offline report; old experiments' records can be expired with a DynamoDB TTL or an export.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from recommender.experiments.exposures import table_names
from recommender.experiments.report import EVENT_COLUMNS, EXPOSURE_COLUMNS
from recommender.store.dynamo import DynamoStore, error_code
from recommender.store.marshal import from_attributes, to_attributes


def _scan(store: DynamoStore, table: str, experiment: str) -> list[dict[str, Any]]:
    paginator = store.client.get_paginator("scan")
    items: list[dict[str, Any]] = []
    try:
        for page in paginator.paginate(TableName=table, FilterExpression="experiment = :e",
                                       ExpressionAttributeValues=to_attributes({":e": experiment}), ConsistentRead=True):
            items.extend(from_attributes(i) for i in page.get("Items", []))
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":  # nothing recorded yet
            return []
        raise
    return items


def read(store: DynamoStore, experiment: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    exposures_table, events_table = table_names(store.prefix)
    exposures = pd.DataFrame(
        [(i["request_id"], i["user_handle"], i["arm"], i["variant"], i["model_handle"], len(i.get("similar_users") or ()))
         for i in _scan(store, exposures_table, experiment)],
        columns=EXPOSURE_COLUMNS)
    events = pd.DataFrame(
        [(i["request_id"], i["similar_user_handle"], i["event"], i["variant"]) for i in _scan(store, events_table, experiment)],
        columns=EVENT_COLUMNS)
    return exposures, events
