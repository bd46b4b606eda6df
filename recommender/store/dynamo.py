"""DynamoDB access shared by the generator and the API: the same code for DynamoDB Local and AWS.

Layout (all names derive from ``DYNAMODB_TABLE``, default ``similar_users``):

* ``similar_users-<run_id>``: one table per generator run, partition key ``user_handle`` (N),
  sort key ``model_handle`` (S), one item per (user, model).
* ``similar_users-control``: pointers, run records and the generator lock; its layout is
  :mod:`recommender.store.control`.

Readers go through the pointer, so they see the previous complete run until a new run has
written every item and flipped the pointers in one transaction.  A run's table is dropped in one
call when it is no longer needed, which costs nothing like a scan-and-delete.

The generator and the API need opposite client settings: the generator should ride out
throttling (many retries, adaptive backoff), the API must answer within 2 s when the database is
gone (short timeouts, one retry).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from recommender.store import control
from recommender.store.control import Pointer
from recommender.store.items import StoredItem
from recommender.store.pointer_cache import PointerCache
from recommender.store.signed_http import SignedHttpClient

if TYPE_CHECKING:
    from recommender.config import ApiSettings, GeneratorSettings, StoreSettings

log = logging.getLogger(__name__)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or refused the request; the API turns this into a 503."""


class NoPublishedRun(LookupError):
    """The model has no published run (its pointer is missing); the API answers 503, not 404."""

    def __init__(self, model_handle: str):
        super().__init__(model_handle)
        self.model_handle = model_handle


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def to_attributes(item: dict) -> dict[str, dict]:
    """Plain item (ints, floats, strings, lists) → DynamoDB attribute values (floats as Decimal)."""
    out = {}
    for key, value in item.items():
        if isinstance(value, float):
            value = Decimal(str(value))
        elif isinstance(value, list):
            value = [Decimal(str(v)) if isinstance(v, float) else v for v in value]
        out[key] = _serializer.serialize(value)
    return out


def from_attributes(attributes: dict[str, dict]) -> dict[str, Any]:
    """DynamoDB attribute values → plain control item: integral numbers as int, the rest as float."""

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return {key: plain(_deserializer.deserialize(value)) for key, value in attributes.items()}


def _config(attempts: tuple[str, int], connect_timeout: float, read_timeout: float, **extra: Any) -> Config:
    return Config(retries={attempts[0]: attempts[1], "mode": "standard"}, connect_timeout=connect_timeout,
                  read_timeout=read_timeout, **extra)


def _client(endpoint_url: str | None, region: str, config: Config) -> Any:
    kwargs: dict[str, Any] = {"region_name": region, "config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return boto3.client("dynamodb", **kwargs)


@dataclass(frozen=True)
class GeneratorClientSpec:
    """How to open the generator's client: plain values, so that a writer process can open its own."""

    endpoint_url: str | None
    region: str
    max_attempts: int
    threads: int

    def config(self) -> Config:
        # botocore "standard" retries: exponential backoff with jitter on throttling and transient
        # errors, capped; after that the error reaches the run.  Our requests are built by code,
        # not users: botocore's parameter validation is a sizeable share of the writer's CPU.
        return _config(("max_attempts", self.max_attempts), 5, 30, max_pool_connections=max(10, self.threads * 2),
                       parameter_validation=False)

    def client(self) -> Any:
        return _client(self.endpoint_url, self.region, self.config())

    def batch_client(self) -> Any:
        """What the batch writer sends ``batch_write_item`` through.

        With an explicit endpoint (DynamoDB Local) the client's CPU is half the write path, so it
        is plain HTTP signed by botocore (:mod:`recommender.store.signed_http`); against AWS the
        round trip dominates and botocore's own client (endpoint rules, credential chain) stays.
        """
        if not self.endpoint_url:
            return self.client()
        return SignedHttpClient(self.endpoint_url, self.region, max_attempts=self.max_attempts,
                                connections=max(10, self.threads * 2))


class DynamoStore:
    """Table naming, clients and the read path (pointer → run table → item)."""

    def __init__(self, settings: StoreSettings, config: Config, *, pointer_cache_seconds: float = 0.0,
                 pointer_cache_dir: str | os.PathLike[str] | None = None,
                 client_spec: GeneratorClientSpec | None = None, item_reader: Any = None, decode_reasons: bool = True):
        self.settings = settings
        self.pointer_cache_seconds = pointer_cache_seconds
        self.prefix = settings.dynamodb_table
        self.control_table = f"{self.prefix}-{control.CONTROL_SUFFIX}"
        self.client = _client(settings.dynamodb_endpoint_url, settings.aws_region, config)
        #: What the read path's two ``get_item`` calls (pointer, item) go through: the boto3 client,
        #: or for the API on an explicit endpoint the signed-HTTP one (half the cost of a miss).
        self.item_reader = item_reader or self.client
        #: The generator's: lets writer processes open the same kind of client (None for the API).
        self.client_spec = client_spec
        #: False for the API: items keep their reasons undecoded until an ``explain`` asks
        #: (:meth:`StoredItem.explained`).
        self.decode_reasons = decode_reasons
        self._pointers = PointerCache(self.prefix, pointer_cache_dir)

    @classmethod
    def for_generator(cls, settings: GeneratorSettings) -> DynamoStore:
        spec = GeneratorClientSpec(settings.dynamodb_endpoint_url, settings.aws_region,
                                   settings.generator_db_max_attempts, settings.write_threads)
        return cls(settings, spec.config(), client_spec=spec)

    @classmethod
    def for_api(cls, settings: ApiSettings) -> DynamoStore:
        # Total attempts, first call included: one by default, so that a dead or frozen database
        # costs at most connect + read timeout per call (the client would retry 503s).
        config = _config(("total_max_attempts", settings.api_db_max_attempts),
                         settings.api_db_connect_timeout, settings.api_db_read_timeout)
        # With an explicit endpoint (DynamoDB Local) botocore's own CPU is half a cache miss, so the
        # reads go over signed HTTP (same timeouts and attempts); against AWS, as for the writes
        # (GeneratorClientSpec.batch_client), botocore's client with its endpoint rules stays.
        reader = None
        if settings.dynamodb_endpoint_url:
            reader = SignedHttpClient(settings.dynamodb_endpoint_url, settings.aws_region,
                                      max_attempts=settings.api_db_max_attempts,
                                      connect_timeout=settings.api_db_connect_timeout,
                                      read_timeout=settings.api_db_read_timeout)
        return cls(settings, config, pointer_cache_seconds=settings.pointer_cache_seconds,
                   pointer_cache_dir=settings.pointer_cache_dir, item_reader=reader, decode_reasons=False)

    def run_table(self, run_id: str) -> str:
        return f"{self.prefix}-{run_id}"

    # -- read path ---------------------------------------------------------------------------

    def _call(self, what: str, fn, **kwargs) -> dict:
        try:
            return fn(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise
            raise StoreUnavailable(f"{what}: {error_code(exc) or exc.__class__.__name__}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"{what}: {exc.__class__.__name__}") from exc

    def pointer(self, model_handle: str, *, fresh: bool = False) -> Pointer | None:
        """The run serving ``model_handle``, or None when none is published.

        Served from the server-wide cache (:mod:`recommender.store.pointer_cache`) while its entry
        is younger than POINTER_CACHE_SECONDS; otherwise (or ``fresh``) a consistent read, which
        the cache keeps unless a read started later is already there, so answers never go back
        to an older run.
        """
        cached = self._pointers.load(model_handle)
        if not fresh and cached and time.time() - cached.read_at < self.pointer_cache_seconds:
            return cached.pointer
        started = time.time()
        try:
            response = self._call(
                "reading the run pointer",
                self.item_reader.get_item,
                TableName=self.control_table,
                Key=control.pointer_key(model_handle),
                ConsistentRead=True,
            )
        except ClientError:  # control table missing: nothing was ever published (or it was wiped)
            response = {}
        except StoreUnavailable:
            # A stale pointer still names a complete run: spend the 2 s budget on the item read.
            if cached and cached.pointer is not None and not fresh:
                return cached.pointer
            raise
        item = Pointer.from_item(from_attributes(response["Item"])) if "Item" in response else None
        return self._pointers.offer(model_handle, started, item).pointer

    def get(self, user_handle: int, model_handle: str, *, pointer: Pointer | None = None) -> StoredItem | None:
        """The stored item for (user, model) in the run the pointer names, or None.

        ``pointer``: one the caller has just read (the item cache keys on it), so that a request
        reads the pointer cache once, not twice.  Raises :class:`NoPublishedRun` when the model
        has no pointer (never published, or the database was wiped): that is the service's
        fault, not the user's, so not a 404.
        """
        for attempt in range(2):
            if pointer is None or attempt > 0:
                pointer = self.pointer(model_handle, fresh=attempt > 0)
            if pointer is None:
                raise NoPublishedRun(model_handle)
            try:
                response = self._call(
                    "reading similar users",
                    self.item_reader.get_item,
                    TableName=pointer.table,
                    Key={"user_handle": {"N": str(int(user_handle))}, "model_handle": {"S": model_handle}},
                )
            except ClientError:
                continue  # the cached run was cleaned up meanwhile: re-read the pointer once
            return StoredItem.from_dynamo(response["Item"], reasons=self.decode_reasons) if "Item" in response else None
        return None

    def pointers(self) -> list[Pointer]:
        """Every published model's pointer (consistent read; the control table is tiny)."""
        try:
            return [Pointer.from_item(item) for item in self._call("reading the run pointers", self.query_control,
                                                                   pk=control.POINTER)]
        except ClientError:  # control table missing: nothing was ever published
            return []

    def ping(self) -> bool:
        """True when the control table answers; the health check's probe."""
        try:
            self.client.describe_table(TableName=self.control_table)
            return True
        except (BotoCoreError, ClientError):
            return False

    # -- tables --------------------------------------------------------------------------------

    def create_table(self, name: str, keys: tuple[tuple[str, str, str], ...]) -> None:
        """Create ``name`` (on-demand billing) unless it exists; wait until it is active."""
        try:
            self.client.describe_table(TableName=name)
            return
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise StoreUnavailable(f"DynamoDB table {name}: {error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB unreachable: {exc}") from exc
        log.info("creating DynamoDB table %s", name)
        try:
            self.client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": n, "KeyType": k} for n, _, k in keys],
                AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t, _ in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":  # created meanwhile by someone else
                raise StoreUnavailable(f"cannot create table {name}: {error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB unreachable: {exc}") from exc
        self.client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def ensure_control_table(self) -> None:
        self.create_table(self.control_table, (("pk", "S", "HASH"), ("sk", "S", "RANGE")))

    def create_run_table(self, run_id: str) -> str:
        name = self.run_table(run_id)
        self.create_table(name, (("user_handle", "N", "HASH"), ("model_handle", "S", "RANGE")))
        return name

    def drop_table(self, name: str) -> None:
        try:
            self.client.delete_table(TableName=name)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise

    def query_control(self, pk: str) -> list[dict]:
        """All control items under ``pk`` (pointers or runs)."""
        items: list[dict] = []
        kwargs: dict[str, Any] = {
            "TableName": self.control_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            items.extend(from_attributes(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
