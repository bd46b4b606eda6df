"""Where the neighbour lists go: versioned runs in DynamoDB (Local or AWS) or, for dry runs, JSON lines."""

from recommender.store.dynamo import DynamoStore, StoreUnavailable
from recommender.store.items import build_items
from recommender.store.jsonl import JsonLinesSink
from recommender.store.publisher import LockHeld, LockLost, RunPublisher, publish

__all__ = ["DynamoStore", "JsonLinesSink", "LockHeld", "LockLost", "RunPublisher", "StoreUnavailable", "build_items", "publish"]
