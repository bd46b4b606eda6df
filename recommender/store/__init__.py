"""Where the neighbour lists go: DynamoDB (local or AWS) or, for dry runs, a JSON-lines file."""

from recommender.store.dynamo import DynamoStore, StoreUnavailable
from recommender.store.items import build_items
from recommender.store.jsonl import JsonLinesWriter

__all__ = ["DynamoStore", "JsonLinesWriter", "StoreUnavailable", "build_items"]
