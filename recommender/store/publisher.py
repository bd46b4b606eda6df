"""Versioned, atomic publishing of a generator run into DynamoDB.

A run (1) takes the generator lock, (2) records itself as ``writing`` and creates its own table,
(3) writes every item there, (4) in one transaction, checks it still holds the lock, points every
model it computed at its table and marks itself ``complete``, (5) drops the tables of runs that
are neither among the newest ``KEEP_RUNS`` complete runs nor pointed at, and (6) releases the
lock.  Killed at any point, it leaves the pointers on the previous complete run; its leftovers
are dropped by the next run.

The lock is a lease renewed by a heartbeat thread: a second generator refuses while the lease is
live, and a killed generator blocks the next one for at most one lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice

from botocore.exceptions import BotoCoreError, ClientError
from tqdm.auto import tqdm

from recommender.store.dynamo import DynamoStore, StoreUnavailable, error_code, to_attributes
from recommender.store.retry import Backoff, RetriesExhausted

log = logging.getLogger(__name__)

LOCK_KEY = {"pk": {"S": "lock"}, "sk": {"S": "generator"}}


class LockHeld(RuntimeError):
    """Another generator run holds the lock."""


class LockLost(RuntimeError):
    """Our lease expired and someone else may have taken over: this run must not publish."""


def _batches(items: Iterable[dict], size: int = 25) -> Iterator[list[dict]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class RunPublisher:
    """The sink the pipeline writes through: ``begin`` → ``write`` per model → ``commit`` (or ``abort``)."""

    def __init__(self, store: DynamoStore, *, lease_seconds: float = 120.0, keep_runs: int = 2,
                 write_threads: int = 4, backoff: Backoff | None = None):
        self.store = store
        self.client = store.client
        self.lease_seconds = lease_seconds
        self.keep_runs = max(1, keep_runs)
        self.write_threads = max(1, write_threads)
        self.backoff = backoff or Backoff()
        self.run_id: str | None = None
        self.table: str | None = None
        self.counts: dict[str, int] = {}
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()
        self.lock_lost = False

    # -- lock ------------------------------------------------------------------------------------

    def acquire_lock(self, run_id: str) -> None:
        now = time.time()
        try:
            self.client.put_item(
                TableName=self.store.control_table,
                Item={
                    **LOCK_KEY,
                    "owner": {"S": run_id},
                    "host": {"S": socket.gethostname()},
                    "pid": {"N": str(os.getpid())},
                    "acquired_at": {"N": str(int(now))},
                    "expires_at": {"N": f"{now + self.lease_seconds:.3f}"},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR #o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}, ":me": {"S": run_id}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise StoreUnavailable(f"taking the generator lock failed: {error_code(exc)}") from exc
            holder = self.client.get_item(TableName=self.store.control_table, Key=LOCK_KEY, ConsistentRead=True).get("Item", {})
            left = float(holder.get("expires_at", {}).get("N", now)) - now
            raise LockHeld(
                f"another generator run ({holder.get('owner', {}).get('S', '?')} on {holder.get('host', {}).get('S', '?')}, "
                f"pid {holder.get('pid', {}).get('N', '?')}) holds the lock; it expires in {max(0, left):.0f}s unless renewed"
            ) from None
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._renew_forever, args=(run_id,), daemon=True, name="lock-heartbeat")
        self._heartbeat.start()

    def _renew_forever(self, run_id: str) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.client.update_item(
                    TableName=self.store.control_table,
                    Key=LOCK_KEY,
                    UpdateExpression="SET expires_at = :exp",
                    ConditionExpression="#o = :me",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":exp": {"N": f"{time.time() + self.lease_seconds:.3f}"}, ":me": {"S": run_id}},
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    log.error("generator lock lost: another run took it over")
                    self.lock_lost = True
                    return
                log.warning("could not renew the generator lock: %s", error_code(exc))
            except BotoCoreError as exc:
                log.warning("could not renew the generator lock: %s", exc)

    def release_lock(self) -> None:
        self._stop.set()
        if self._heartbeat:
            self._heartbeat.join(timeout=5)
        if self.run_id is None:
            return
        try:
            self.client.delete_item(
                TableName=self.store.control_table,
                Key=LOCK_KEY,
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": self.run_id}},
            )
        except (ClientError, BotoCoreError):
            pass  # not ours any more, or the database is gone: the lease runs out by itself

    # -- run lifecycle -----------------------------------------------------------------------

    def begin(self, run_id: str, models: tuple[str, ...]) -> None:
        """Lock, record the run as writing, create its table."""
        self.store.ensure_control_table()
        self.acquire_lock(run_id)
        self.run_id = run_id
        self._put_run_record("writing", models=list(models))
        self.table = self.store.create_run_table(run_id)

    def write(self, model_handle: str, items: Iterable[dict], total: int | None = None, progress: bool = False) -> int:
        """Write items to the run's table with ``write_threads`` parallel batch writers."""
        if self.table is None:
            raise RuntimeError("begin() first")
        if self.lock_lost:
            raise LockLost("the generator lock was lost; not writing")
        count = 0
        bar = tqdm(total=total, desc=f"write {model_handle}", unit="item", disable=not progress, leave=False)
        pending: set[Future] = set()
        try:
            with ThreadPoolExecutor(self.write_threads, thread_name_prefix="writer") as pool:
                for batch in _batches(items):
                    if len(pending) >= self.write_threads * 4:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            bar.update(future.result())
                    pending.add(pool.submit(self._write_batch, batch))
                    count += len(batch)
                for future in pending:
                    bar.update(future.result())
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"writing to DynamoDB table {self.table} failed: {exc}") from exc
        finally:
            bar.close()
        self.counts[model_handle] = self.counts.get(model_handle, 0) + count
        return count

    def _write_batch(self, batch: list[dict]) -> int:
        requests = [{"PutRequest": {"Item": to_attributes(item)}} for item in batch]
        attempt = 0
        while requests:
            response = self.client.batch_write_item(RequestItems={self.table: requests})
            requests = response.get("UnprocessedItems", {}).get(self.table, [])
            if requests:
                attempt += 1
                try:
                    self.backoff.sleep(attempt)
                except RetriesExhausted:
                    raise RetriesExhausted(
                        f"{len(requests)} items still unprocessed by DynamoDB after {self.backoff.max_retries} retries"
                    ) from None
        return len(batch)

    def commit(self, summary: str = "") -> None:
        """Flip every written model's pointer to this run, atomically, if we still hold the lock."""
        if self.lock_lost:
            raise LockLost("the generator lock was lost; this run was not published")
        now = time.time()
        actions: list[dict] = [
            {
                "ConditionCheck": {
                    "TableName": self.store.control_table,
                    "Key": LOCK_KEY,
                    "ConditionExpression": "#o = :me",
                    "ExpressionAttributeNames": {"#o": "owner"},
                    "ExpressionAttributeValues": {":me": {"S": self.run_id}},
                }
            },
            {
                "Update": {
                    "TableName": self.store.control_table,
                    "Key": {"pk": {"S": "run"}, "sk": {"S": self.run_id}},
                    "UpdateExpression": "SET #s = :complete, finished_at = :now, item_counts = :counts, summary = :summary",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {
                        ":complete": {"S": "complete"},
                        ":now": {"N": str(int(now))},
                        ":counts": {"M": {m: {"N": str(c)} for m, c in self.counts.items()}},
                        ":summary": {"S": summary},
                    },
                }
            },
        ]
        for model_handle, count in self.counts.items():
            actions.append(
                {
                    "Put": {
                        "TableName": self.store.control_table,
                        "Item": {
                            "pk": {"S": "pointer"},
                            "sk": {"S": model_handle},
                            "run_id": {"S": self.run_id},
                            "table": {"S": self.table},
                            "items": {"N": str(count)},
                            "published_at": {"N": str(int(now))},
                        },
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise LockLost("the generator lock was taken over before publishing; this run was not published") from exc
            raise StoreUnavailable(f"publishing the run failed: {error_code(exc)}") from exc
        log.info("published run %s: %s", self.run_id, ", ".join(f"{m} ({c:,} items)" for m, c in self.counts.items()))

    def abort(self) -> None:
        """Best effort: mark the run failed and drop its table (the next run would do it anyway)."""
        if self.run_id is None:
            return
        try:
            self._put_run_record("failed")
            if self.table:
                self.store.drop_table(self.table)
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not clean up failed run %s: %s", self.run_id, exc)

    def cleanup(self) -> list[str]:
        """Drop runs that are neither pointed at nor among the newest KEEP_RUNS complete ones."""
        runs = sorted(self.store.query_control("run"), key=lambda r: r["sk"], reverse=True)
        pointed = {p["run_id"] for p in self.store.query_control("pointer")}
        complete = [r["sk"] for r in runs if r.get("status") == "complete"]
        keep = pointed | set(complete[: self.keep_runs]) | {self.run_id}
        dropped = []
        for record in runs:
            run_id = record["sk"]
            if run_id in keep:
                continue
            self.store.drop_table(self.store.run_table(run_id))
            self.client.delete_item(TableName=self.store.control_table, Key={"pk": {"S": "run"}, "sk": {"S": run_id}})
            dropped.append(run_id)
        if dropped:
            log.info("removed %d old or unfinished run(s): %s", len(dropped), ", ".join(dropped))
        return dropped

    def _put_run_record(self, status: str, **extra: object) -> None:
        item = {"pk": "run", "sk": self.run_id, "status": status, "started_at": int(time.time()), **extra}
        if status != "writing":
            self.client.update_item(
                TableName=self.store.control_table,
                Key={"pk": {"S": "run"}, "sk": {"S": self.run_id}},
                UpdateExpression="SET #s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": status}},
            )
            return
        self.client.put_item(TableName=self.store.control_table, Item=to_attributes(item))


def publish(store: DynamoStore, run_id: str, items: Iterable[dict], **options) -> RunPublisher:
    """Publish a ready list of items (any models) as one complete run: for tools and tests."""
    items = list(items)
    models = tuple(dict.fromkeys(i["model_handle"] for i in items))
    publisher = RunPublisher(store, **options)
    try:
        publisher.begin(run_id, models)
        for model in models:
            publisher.write(model, (i for i in items if i["model_handle"] == model))
        publisher.commit()
        publisher.cleanup()
    finally:
        publisher.release_lock()
    return publisher
