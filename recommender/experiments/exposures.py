"""Exposures and feedback events, stored in DynamoDB by a background writer off the request path.

Two tables, created on demand next to the run tables (same endpoint, names from the
``DYNAMODB_TABLE`` prefix):

* ``<prefix>-ab-exposures``: partition key ``request_id``: one item per answer given inside an
  experiment (user, experiment, assigned arm, served variant, model, neighbours shown, time).
  Keyed by request so that feedback can be checked against what that request showed.  The
  request id is the server's own (``recommender.api.ab.expose``), never a client's
  ``X-Request-ID``, and the put is conditional (``attribute_not_exists``): nothing can replace
  an exposure once written, so feedback is always checked against what was really shown.
* ``<prefix>-ab-events``: partition key ``request_id``, sort key ``event_key`` =
  ``<similar_user_handle>#<event>``; written with ``attribute_not_exists`` too, so the same
  event sent twice is stored and counted once.

The request thread only puts a record on a bounded in-memory queue (one for exposures, one for
events); a writer thread per queue drains it, one conditional put per record, ``PUT_THREADS`` at
a time (a conditional write cannot be batched).  Retries are the client's (botocore "standard"
mode: exponential backoff with jitter, :func:`writer_store`), the one retry policy; a record
still failing after them is counted as failed.  What a crash can lose is what sits in the queues
(at most ``AB_QUEUE_SIZE`` records each, normally a few milliseconds' worth); a graceful stop
drains them first (up to 20 s, within gunicorn's graceful timeout).  When the queue is full
(DynamoDB down for long), records are dropped and counted rather than slowing answers down.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
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
BATCH = 25  # records a writer thread takes off its queue per round
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
    """A client for the writer: off the request path, so it may wait and retry longer than reads.

    Its retries (botocore "standard": throttling and transient errors, backoff with jitter) are
    the writer's only ones.
    """
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=2, read_timeout=5,
                    max_pool_connections=2 * ExposureLog.PUT_THREADS)
    return DynamoStore(settings, config)


def create_tables(store: DynamoStore) -> None:
    exposures, events = table_names(store.prefix)
    store.create_table(exposures, (("request_id", "S", "HASH"),))
    store.create_table(events, (("request_id", "S", "HASH"), ("event_key", "S", "RANGE")))


class ExposureLog:
    """The per-process queues, writer threads and memory of recent exposures.

    Exposures and events have a queue, a writer thread and ``PUT_THREADS`` put threads each, so
    that a burst of feedback never delays the exposures, which feedback validation and the
    report depend on.
    """

    PUT_THREADS = 4

    def __init__(self, store: DynamoStore, queue_size: int = 10_000):
        self.store = store
        self.exposures_table, self.events_table = table_names(store.prefix)
        self._queues: dict[str, queue.Queue] = {"exposure": queue.Queue(maxsize=queue_size),
                                                "event": queue.Queue(maxsize=queue_size)}
        self._recent: OrderedDict[str, Exposure] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._start_lock = threading.Lock()
        self._tables_lock = threading.Lock()
        self._tables_ready = False
        self._pools: dict[str, ThreadPoolExecutor] = {}

    # -- request side ------------------------------------------------------------------------

    def record(self, item: Exposure | Event) -> None:
        """Queue ``item`` for writing; never blocks (a full queue drops it, counted)."""
        kind = _kind(item)
        if isinstance(item, Exposure):
            metrics.EXPOSURES.labels(item.experiment, item.variant).inc()
            with self._recent_lock:
                # The first exposure of a request id stands, here as in DynamoDB.
                self._recent.setdefault(item.request_id, item)
                if len(self._recent) > RECENT:
                    self._recent.popitem(last=False)
        self._ensure_threads()
        try:
            self._queues[kind].put_nowait(item)
        except queue.Full:
            metrics.LOG_WRITES.labels(kind, "dropped").inc()

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
        return sum(q.qsize() for q in self._queues.values())

    # -- writer side ---------------------------------------------------------------------------

    def _ensure_threads(self) -> None:
        if len(self._threads) == 2 and all(t.is_alive() for t in self._threads.values()):
            return
        with self._start_lock:
            for kind in self._queues:
                thread = self._threads.get(kind)
                if thread is None or not thread.is_alive():
                    self._threads[kind] = threading.Thread(target=self._run, args=(kind,), daemon=True,
                                                           name=f"ab-{kind}-writer")
                    self._threads[kind].start()
            if not self._pools:
                self._pools = {kind: ThreadPoolExecutor(self.PUT_THREADS, thread_name_prefix=f"ab-{kind}-put")
                               for kind in self._queues}
                atexit.register(self.close)

    def close(self, timeout: float = 20.0) -> None:
        """Drain the queues (bounded in time, within gunicorn's graceful stop): a stop loses nothing."""
        deadline = time.monotonic() + timeout
        for kind, thread in list(self._threads.items()):
            if thread.is_alive():
                try:
                    self._queues[kind].put(None, timeout=max(0.1, deadline - time.monotonic()))
                except queue.Full:
                    continue
        for thread in list(self._threads.values()):
            thread.join(max(0.1, deadline - time.monotonic()))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (tests and the demo)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(q.unfinished_tasks == 0 for q in self._queues.values()):
                return True
            time.sleep(0.01)
        return False

    def _run(self, kind: str) -> None:
        source = self._queues[kind]
        while True:
            batch = [source.get()]
            while len(batch) < BATCH and batch[-1] is not None:
                try:
                    batch.append(source.get_nowait())
                except queue.Empty:
                    break
            items = [item for item in batch if item is not None]
            try:
                if items:
                    self._ensure_tables()
                    self._write(kind, items)
            except Exception:  # noqa: BLE001 - the writer must outlive any one failure
                log.exception("writing %d experiment %s records failed", len(items), kind)
                metrics.LOG_WRITES.labels(kind, "failed").inc(len(items))
            finally:
                for _ in batch:
                    source.task_done()
            if len(items) < len(batch):  # the stop marker
                return

    def _ensure_tables(self) -> None:
        with self._tables_lock:
            if not self._tables_ready:
                create_tables(self.store)
                self._tables_ready = True

    def _write(self, kind: str, items: list[Exposure | Event]) -> None:
        """One conditional put per record on the kind's put threads; a failure is counted per record."""
        put = self._put_exposure if kind == "exposure" else self._put_event
        futures = [self._pools[kind].submit(put, item) for item in items]
        for future in futures:
            try:
                future.result()
            except (BotoCoreError, ClientError) as exc:  # after the client's retries
                log.warning("writing an experiment %s record failed: %s", kind, exc)
                metrics.LOG_WRITES.labels(kind, "failed").inc()

    def _put(self, table: str, item: dict[str, dict]) -> bool:
        """Put ``item`` unless its key is taken; False when it was."""
        try:
            self.store.client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(request_id)")
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _put_exposure(self, exposure: Exposure) -> None:
        if self._put(self.exposures_table, exposure.to_dynamo()):
            metrics.LOG_WRITES.labels("exposure", "written").inc()
            return
        # Server-made request ids never repeat: someone else's record, which stays as it was.
        log.warning("exposure %s already stored; the stored one stands", exposure.request_id)
        metrics.LOG_WRITES.labels("exposure", "conflict").inc()

    def _put_event(self, event: Event) -> None:
        labels = (event.exposure.experiment, event.exposure.variant, event.event)
        if not self._put(self.events_table, event.to_dynamo()):
            metrics.DUPLICATE_EVENTS.labels(*labels).inc()
            return
        metrics.LOG_WRITES.labels("event", "written").inc()
        metrics.EVENTS.labels(*labels).inc()


def _kind(item: Exposure | Event | None) -> str:
    return "exposure" if isinstance(item, Exposure) else "event"
