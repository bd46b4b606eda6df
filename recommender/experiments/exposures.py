"""Exposures and feedback events, stored in DynamoDB by a background writer off the request path.

Two tables, created on demand next to the run tables (same endpoint, names from the
``DYNAMODB_TABLE`` prefix):

* ``<prefix>-ab-exposures``: partition key ``request_id``: one item per answer given inside an
  experiment (user, experiment, assigned arm, served variant, model, neighbours shown, time).
  Keyed by request so that feedback can be checked against what that request showed.
* ``<prefix>-ab-events``: partition key ``request_id``, sort key ``event_key`` =
  ``<similar_user_handle>#<event>``; written with ``attribute_not_exists``, so the same event
  sent twice is stored and counted once.

The request thread only puts a record on a bounded in-memory queue; one writer thread per
process drains it (exposures in batches of 25, events one conditional put each).  What a crash
can lose is what sits in that queue (at most ``AB_QUEUE_SIZE`` records, normally a few
milliseconds' worth); a graceful stop drains it first.  When the queue is full (DynamoDB down
for long), records are dropped and counted rather than slowing answers down.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from recommender.experiments import metrics
from recommender.store.dynamo import DynamoStore, StoreUnavailable, error_code

log = logging.getLogger(__name__)

EXPOSURES_SUFFIX = "ab-exposures"
EVENTS_SUFFIX = "ab-events"
EVENTS = ("click", "follow", "dismiss")
BATCH = 25  # DynamoDB's batch_write_item limit
RECENT = 20_000  # exposures each process remembers for checking feedback without a read


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Exposure:
    request_id: str
    user_handle: int
    experiment: str
    arm: str  # the arm the user is assigned to
    variant: str  # what was served: the arm, or "fallback"
    model_handle: str
    similar_users: tuple[int, ...]
    shown_at: str = field(default_factory=now_iso)

    def to_dynamo(self) -> dict[str, dict]:
        return {
            "request_id": {"S": self.request_id},
            "user_handle": {"N": str(self.user_handle)},
            "experiment": {"S": self.experiment},
            "arm": {"S": self.arm},
            "variant": {"S": self.variant},
            "model_handle": {"S": self.model_handle},
            "similar_users": {"L": [{"N": str(u)} for u in self.similar_users]},
            "shown_at": {"S": self.shown_at},
        }

    @classmethod
    def from_dynamo(cls, item: dict[str, dict]) -> Exposure:
        return cls(
            request_id=item["request_id"]["S"], user_handle=int(item["user_handle"]["N"]),
            experiment=item["experiment"]["S"], arm=item["arm"]["S"], variant=item["variant"]["S"],
            model_handle=item["model_handle"]["S"],
            similar_users=tuple(int(v["N"]) for v in item.get("similar_users", {}).get("L", [])),
            shown_at=item.get("shown_at", {}).get("S", ""),
        )


@dataclass(frozen=True, slots=True)
class Event:
    exposure: Exposure
    similar_user_handle: int
    event: str
    received_at: str = field(default_factory=now_iso)

    @property
    def event_key(self) -> str:
        return f"{self.similar_user_handle}#{self.event}"

    def to_dynamo(self) -> dict[str, dict]:
        e = self.exposure
        return {
            "request_id": {"S": e.request_id},
            "event_key": {"S": self.event_key},
            "event": {"S": self.event},
            "similar_user_handle": {"N": str(self.similar_user_handle)},
            "user_handle": {"N": str(e.user_handle)},
            "experiment": {"S": e.experiment},
            "arm": {"S": e.arm},
            "variant": {"S": e.variant},
            "model_handle": {"S": e.model_handle},
            "received_at": {"S": self.received_at},
        }


def table_names(prefix: str) -> tuple[str, str]:
    return f"{prefix}-{EXPOSURES_SUFFIX}", f"{prefix}-{EVENTS_SUFFIX}"


def writer_store(settings: Any) -> DynamoStore:
    """A client for the writer: off the request path, so it may wait and retry longer than reads."""
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    return DynamoStore(settings, config)


def create_tables(store: DynamoStore) -> None:
    exposures, events = table_names(store.prefix)
    store.create_table(exposures, (("request_id", "S", "HASH"),))
    store.create_table(events, (("request_id", "S", "HASH"), ("event_key", "S", "RANGE")))


class ExposureLog:
    """The per-process queue, writer thread and memory of recent exposures."""

    def __init__(self, store: DynamoStore, queue_size: int = 10_000):
        self.store = store
        self.exposures_table, self.events_table = table_names(store.prefix)
        self._queue: queue.Queue[Exposure | Event | None] = queue.Queue(maxsize=queue_size)
        self._recent: OrderedDict[str, Exposure] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._tables_ready = False

    # -- request side ------------------------------------------------------------------------

    def record(self, item: Exposure | Event) -> None:
        """Queue ``item`` for writing; never blocks (a full queue drops it, counted)."""
        if isinstance(item, Exposure):
            metrics.EXPOSURES.labels(item.experiment, item.variant).inc()
            with self._recent_lock:
                self._recent[item.request_id] = item
                if len(self._recent) > RECENT:
                    self._recent.popitem(last=False)
        self._ensure_thread()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            metrics.LOG_WRITES.labels(_kind(item), "dropped").inc()

    def find(self, request_id: str) -> Exposure | None:
        """The exposure of ``request_id``: this process's memory first, else DynamoDB."""
        with self._recent_lock:
            found = self._recent.get(request_id)
        if found is not None:
            return found
        try:
            response = self.store.client.get_item(
                TableName=self.exposures_table, Key={"request_id": {"S": request_id}}, ConsistentRead=True)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None  # nothing was ever exposed
            raise StoreUnavailable(f"reading an exposure: {error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"reading an exposure: {exc.__class__.__name__}") from exc
        return Exposure.from_dynamo(response["Item"]) if "Item" in response else None

    def pending(self) -> int:
        return self._queue.qsize()

    # -- writer side ---------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ab-exposure-writer", daemon=True)
                self._thread.start()
                atexit.register(self.close)

    def close(self, timeout: float = 5.0) -> None:
        """Drain the queue (bounded in time): a graceful worker stop loses nothing."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        thread.join(timeout)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (tests and the demo)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < BATCH and first is not None:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is None for item in batch)
            items = [item for item in batch if item is not None]
            try:
                self._write(items)
            except Exception:  # noqa: BLE001 - the writer must outlive any one failure
                log.exception("writing %d experiment records failed", len(items))
                for item in items:
                    metrics.LOG_WRITES.labels(_kind(item), "failed").inc()
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                return

    def _write(self, items: list[Exposure | Event]) -> None:
        if not items:
            return
        if not self._tables_ready:
            create_tables(self.store)
            self._tables_ready = True
        exposures = [i for i in items if isinstance(i, Exposure)]
        if exposures:
            self._write_exposures(exposures)
        for event in (i for i in items if isinstance(i, Event)):
            self._write_event(event)

    def _write_exposures(self, exposures: list[Exposure]) -> None:
        requests = [{"PutRequest": {"Item": e.to_dynamo()}} for e in exposures]
        for attempt in range(6):
            response = self.store.client.batch_write_item(RequestItems={self.exposures_table: requests})
            requests = response.get("UnprocessedItems", {}).get(self.exposures_table, [])
            if not requests:
                break
            time.sleep(min(1.0, 0.05 * 2**attempt))
        metrics.LOG_WRITES.labels("exposure", "written").inc(len(exposures) - len(requests))
        if requests:
            metrics.LOG_WRITES.labels("exposure", "failed").inc(len(requests))

    def _write_event(self, event: Event) -> None:
        labels = (event.exposure.experiment, event.exposure.variant, event.event)
        try:
            self.store.client.put_item(
                TableName=self.events_table, Item=event.to_dynamo(),
                ConditionExpression="attribute_not_exists(request_id)")
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            metrics.DUPLICATE_EVENTS.labels(*labels).inc()
            return
        metrics.LOG_WRITES.labels("event", "written").inc()
        metrics.EVENTS.labels(*labels).inc()


def _kind(item: Exposure | Event | None) -> str:
    return "exposure" if isinstance(item, Exposure) else "event"
