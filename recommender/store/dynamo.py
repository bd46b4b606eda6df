"""DynamoDB store for neighbour lists: the same code for DynamoDB Local and AWS.

The generator and the API need opposite client settings.  The generator should survive
throttling and slow batches (many retries, adaptive backoff); the API must answer within 2 s
when the database is gone (short connect/read timeouts, one retry), so each builds its own
client through :meth:`DynamoStore.for_generator` / :meth:`DynamoStore.for_api`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from tqdm.auto import tqdm

from recommender.config import Settings

log = logging.getLogger(__name__)


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or refused the request; the API turns this into a 503."""


def _to_dynamo(item: dict) -> dict:
    out = dict(item)
    out["scores"] = [Decimal(str(s)) for s in item["scores"]]
    return out


def _from_dynamo(item: dict) -> dict:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(value, Decimal):
            out[key] = int(value) if value == value.to_integral_value() and key != "scores" else float(value)
        elif isinstance(value, list):
            out[key] = [int(v) if key == "similar_users" else float(v) for v in value]
        else:
            out[key] = value
    return out


class DynamoStore:
    """One DynamoDB table, partition key ``user_handle`` (N), sort key ``model_handle`` (S)."""

    def __init__(self, settings: Settings, config: Config):
        self.settings = settings
        self.table_name = settings.table_name
        kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": config}
        if settings.dynamodb_endpoint_url:
            kwargs["endpoint_url"] = settings.dynamodb_endpoint_url
        self.resource = boto3.resource("dynamodb", **kwargs)
        self.client = self.resource.meta.client
        self.table = self.resource.Table(self.table_name)

    @classmethod
    def for_generator(cls, settings: Settings) -> DynamoStore:
        return cls(settings, Config(retries={"max_attempts": 10, "mode": "adaptive"}, connect_timeout=5, read_timeout=30))

    @classmethod
    def for_api(cls, settings: Settings) -> DynamoStore:
        return cls(
            settings,
            Config(
                retries={"max_attempts": settings.api_max_attempts, "mode": "standard"},
                connect_timeout=settings.api_connect_timeout,
                read_timeout=settings.api_read_timeout,
            ),
        )

    def ensure_table(self) -> None:
        """Create the table (on-demand billing) if it does not exist, and wait until it is active."""
        try:
            self.client.describe_table(TableName=self.table_name)
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise StoreUnavailable(f"DynamoDB table {self.table_name}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB unreachable: {exc}") from exc
        log.info("creating DynamoDB table %s", self.table_name)
        try:
            self.client.create_table(
                TableName=self.table_name,
                KeySchema=[
                    {"AttributeName": "user_handle", "KeyType": "HASH"},
                    {"AttributeName": "model_handle", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "user_handle", "AttributeType": "N"},
                    {"AttributeName": "model_handle", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":  # created meanwhile
                raise StoreUnavailable(f"cannot create table {self.table_name}: {exc}") from exc
        self.client.get_waiter("table_exists").wait(TableName=self.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    def write(self, items: Iterable[dict], total: int | None = None, progress: bool = False, desc: str = "write") -> int:
        """Batch-write items (25 per request; boto3 re-sends unprocessed items); returns the count."""
        count = 0
        try:
            with self.table.batch_writer(overwrite_by_pkeys=["user_handle", "model_handle"]) as batch:
                for item in tqdm(items, total=total, desc=desc, unit="item", disable=not progress, leave=False):
                    batch.put_item(Item=_to_dynamo(item))
                    count += 1
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"writing to DynamoDB table {self.table_name} failed: {exc}") from exc
        return count

    def get(self, user_handle: int, model_handle: str) -> dict | None:
        """The stored item for (user, model), or None."""
        try:
            response = self.table.get_item(Key={"user_handle": user_handle, "model_handle": model_handle})
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"reading from DynamoDB failed: {exc.__class__.__name__}") from exc
        item = response.get("Item")
        return _from_dynamo(item) if item else None

    def ping(self) -> bool:
        """True when the table answers; the health check's probe."""
        try:
            self.client.describe_table(TableName=self.table_name)
            return True
        except (BotoCoreError, ClientError):
            return False
