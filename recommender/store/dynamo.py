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
throttling (many attempts, backoff with jitter, optionally adaptive rate limiting), the API must
answer within 2 s when the database is gone (short timeouts, one attempt).  Both are botocore
clients and nothing else (docs/storage.md lists every setting and why): the same road on AWS and
on DynamoDB Local, for reads and writes.

Where the endpoint comes from: ``DYNAMODB_ENDPOINT_URL`` when it is set; otherwise nothing is
passed, so botocore's own configuration applies (``AWS_ENDPOINT_URL_DYNAMODB``,
``AWS_ENDPOINT_URL``, the config file), and without any of them the region's AWS endpoint.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from recommender.publishing import RunExists
from recommender.store import control
from recommender.store.codec import from_dynamo
from recommender.store.control import Pointer
from recommender.store.items import StoredItem
from recommender.store.marshal import from_attributes, to_attributes
from recommender.store.pointer_cache import PointerCache

if TYPE_CHECKING:
    from recommender.config import ApiSettings, GeneratorSettings, StoreSettings

log = logging.getLogger(__name__)

#: A run table's key schema (name, attribute type, key type): created by the write path, given to ImportTable.
RUN_TABLE_KEYS = (("user_handle", "N", "HASH"), ("model_handle", "S", "RANGE"))


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or refused the request; the API turns this into a 503."""


class NoPublishedRun(LookupError):
    """The model has no published run (its pointer is missing); the API answers 503, not 404."""

    def __init__(self, model_handle: str):
        super().__init__(model_handle)
        self.model_handle = model_handle


class RunUnavailable(RuntimeError):
    """A published run's table is missing or unreadable: the API answers 503 ``run_unavailable``, not 404.

    Someone dropped the table (or restored the database without it) while the pointer still names
    it; recovery is re-running the generator or pointing the model back at a previous run
    (``docs/operations/index.md``, "Runbook").
    """

    def __init__(self, pointer: Pointer):
        super().__init__(f"run {pointer.run_id} of model {pointer.model_handle}: table {pointer.table} is missing")
        self.pointer = pointer


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def client_config(*, attempts: int, mode: str = "standard", connect_timeout: float, read_timeout: float,
                  pool: int = 10, keepalive: bool = True, validate: bool = True) -> Config:
    """The one recipe for a DynamoDB client's botocore settings (docs/storage.md, "botocore settings").

    ``attempts`` is the total per request, the first call included (botocore's
    ``total_max_attempts``: ``max_attempts`` would mean retries *after* the first in the legacy
    spelling and one more attempt than asked).  ``validate=False`` skips botocore's parameter
    validation: the generator's requests are built by code, not users, and validating every
    attribute of every item is a large share of the writer's client CPU (docs/storage.md).
    """
    return Config(retries={"total_max_attempts": attempts, "mode": mode}, connect_timeout=connect_timeout,
                  read_timeout=read_timeout, max_pool_connections=pool, tcp_keepalive=keepalive,
                  parameter_validation=validate)


def dynamodb_client(endpoint_url: str | None, region: str, config: Config) -> Any:
    """A botocore DynamoDB client; ``endpoint_url`` only when set, so that botocore's own
    ``AWS_ENDPOINT_URL_DYNAMODB`` is not overridden by an empty project setting."""
    kwargs: dict[str, Any] = {"region_name": region, "config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return boto3.client("dynamodb", **kwargs)


@dataclass(frozen=True)
class GeneratorClientSpec:
    """How to open the generator's client: plain values, so that a partition's worker can open its own."""

    endpoint_url: str | None
    region: str
    max_attempts: int
    threads: int
    retry_mode: Literal["standard", "adaptive"] = "standard"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    tcp_keepalive: bool = True

    @classmethod
    def of(cls, settings: GeneratorSettings) -> GeneratorClientSpec:
        return cls(settings.dynamodb_endpoint_url, settings.aws_region, settings.generator_db_max_attempts,
                   settings.write_threads, settings.generator_db_retry_mode, settings.generator_db_connect_timeout,
                   settings.generator_db_read_timeout, settings.db_tcp_keepalive)

    def config(self) -> Config:
        # A connection per writer thread and as many spare (the lock's heartbeat, control rows):
        # fewer would make threads wait for, or churn, connections.
        return client_config(attempts=self.max_attempts, mode=self.retry_mode, connect_timeout=self.connect_timeout,
                             read_timeout=self.read_timeout, pool=max(10, self.threads * 2),
                             keepalive=self.tcp_keepalive, validate=False)

    def client(self) -> Any:
        return dynamodb_client(self.endpoint_url, self.region, self.config())


class DynamoStore:
    """Table naming, clients and the read path (pointer → run table → item)."""

    def __init__(self, settings: StoreSettings, config: Config, *, pointer_cache_seconds: float = 0.0,
                 pointer_cache_dir: str | os.PathLike[str] | None = None,
                 client_spec: GeneratorClientSpec | None = None, decode_reasons: bool = True):
        self.settings = settings
        self.pointer_cache_seconds = pointer_cache_seconds
        #: Wall clock of the pointer cache (the same for every process of a host); tests replace it.
        self.clock: Callable[[], float] = time.time
        self.prefix = settings.dynamodb_table
        self.control_table = f"{self.prefix}-{control.CONTROL_SUFFIX}"
        self.client = dynamodb_client(settings.dynamodb_endpoint_url, settings.aws_region, config)
        #: The generator's: lets the partitions' workers open the same kind of client (None for the API).
        self.client_spec = client_spec
        #: False for the API: items keep their reasons undecoded until an ``explain`` asks
        #: (:func:`~recommender.store.codec.explained`).
        self.decode_reasons = decode_reasons
        self._pointers = PointerCache(self.prefix, pointer_cache_dir)

    @classmethod
    def for_generator(cls, settings: GeneratorSettings) -> DynamoStore:
        spec = GeneratorClientSpec.of(settings)
        return cls(settings, spec.config(), client_spec=spec)

    @classmethod
    def for_api(cls, settings: ApiSettings) -> DynamoStore:
        # One attempt by default, so that a dead or frozen database costs at most connect + read
        # timeout per call (the 2 s budget); the pool is per worker process, shared by its greenlets.
        config = client_config(attempts=settings.api_db_max_attempts, connect_timeout=settings.api_db_connect_timeout,
                               read_timeout=settings.api_db_read_timeout, pool=settings.api_db_max_pool_connections,
                               keepalive=settings.db_tcp_keepalive)
        return cls(settings, config, pointer_cache_seconds=settings.pointer_cache_seconds,
                   pointer_cache_dir=settings.pointer_cache_dir, decode_reasons=False)

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
        if not fresh and cached and self.clock() - cached.read_at < self.pointer_cache_seconds:
            return cached.pointer
        started = self.clock()
        try:
            response = self._call(
                "reading the run pointer",
                self.client.get_item,
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
        has no pointer (never published, or the database was wiped), and :class:`RunUnavailable`
        when the run the pointer names has no table: both are the service's fault, not the
        user's, so not a 404.
        """
        # Not a retry: a cached pointer may name a run dropped since, so a missing table means
        # "read the pointer afresh" (once), and the new run answers.
        failed: Pointer | None = None
        for fresh in (False, True):
            if pointer is None or fresh:
                pointer = self.pointer(model_handle, fresh=fresh)
            if pointer is None:
                raise NoPublishedRun(model_handle)
            if pointer == failed:
                break  # the fresh pointer names the run whose table is gone
            try:
                response = self._call(
                    "reading similar users",
                    self.client.get_item,
                    TableName=pointer.table,
                    Key=to_attributes({"user_handle": int(user_handle), "model_handle": model_handle}),
                )
            except ClientError:
                # A cached pointer to a run cleaned up meanwhile: re-read the pointer once.
                failed = pointer
                continue
            return from_dynamo(response["Item"], reasons=self.decode_reasons) if "Item" in response else None
        raise RunUnavailable(failed or pointer)

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

    def unavailable_runs(self) -> list[Pointer]:
        """The published runs whose table is missing (or being deleted): what ``/health`` reports.

        One ``DescribeTable`` per pointed table (models published together share one).  Raises
        :class:`StoreUnavailable` when the database does not answer.
        """
        by_table: dict[str, list[Pointer]] = {}
        for pointer in self.pointers():
            by_table.setdefault(pointer.table, []).append(pointer)
        missing: list[Pointer] = []
        for table, pointers in by_table.items():
            try:
                status = self._call("describing a run table", self.client.describe_table, TableName=table)["Table"]["TableStatus"]
            except ClientError:  # ResourceNotFoundException (_call turns the other errors into StoreUnavailable)
                status = "MISSING"
            if status not in ("ACTIVE", "UPDATING"):
                missing.extend(pointers)
        return missing

    # -- tables --------------------------------------------------------------------------------

    def create_table(self, name: str, keys: tuple[tuple[str, str, str], ...], *, exclusive: bool = False) -> None:
        """Create ``name`` (on-demand billing) unless it exists; wait until it is active.

        ``exclusive``: the table must be new (a run's table): :class:`~recommender.publishing.RunExists`
        when it exists, and it is left as it is."""
        try:
            self.client.describe_table(TableName=name)
            if exclusive:
                raise RunExists(f"table {name} exists already; a run's table must be new: nothing was changed")
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
            if error_code(exc) == "ResourceInUseException" and exclusive:
                raise RunExists(f"table {name} exists already; a run's table must be new: nothing was changed") from None
            if error_code(exc) != "ResourceInUseException":  # created meanwhile by someone else
                raise StoreUnavailable(f"cannot create table {name}: {error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB unreachable: {exc}") from exc
        self.client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def ensure_control_table(self) -> None:
        self.create_table(self.control_table, (("pk", "S", "HASH"), ("sk", "S", "RANGE")))

    def create_run_table(self, run_id: str) -> str:
        """A new table for the run (:class:`~recommender.publishing.RunExists` if it exists)."""
        name = self.run_table(run_id)
        self.create_table(name, RUN_TABLE_KEYS, exclusive=True)
        return name

    def table_exists(self, name: str) -> bool:
        try:
            self._call(f"describing table {name}", self.client.describe_table, TableName=name)
            return True
        except ClientError:  # ResourceNotFoundException
            return False

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
            "ExpressionAttributeValues": to_attributes({":pk": pk}),
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            items.extend(from_attributes(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
