"""The one batch writer: parallel ``BatchWriteItem`` into one table, and the one retry policy.

Every batch write goes through here (run items from the generator and from each partition's
worker process or Dask worker; anything else that bulk-loads a table).  ``BatchWriteItem`` takes
25 items; several threads keep several requests in flight because one writer is bound by round
trips, not by the database.  A bounded number of batches is queued at once so that memory stays
flat however many items the generator streams in.  A process's client CPU (botocore) bounds what
one writer sends: a run writes from several processes only as partitions, each worker with its
own writer (:class:`~recommender.store.publisher.TableTarget`), never through a second pool.

The retry policy has two parts and no third (docs/storage.md, "Retries"): a *request* that fails
(throttled, 5xx, connection error) is retried by botocore itself, ``total_max_attempts`` in all
(``GENERATOR_DB_MAX_ATTEMPTS``); a request that succeeds but hands back ``UnprocessedItems`` is not
an error to botocore, so :meth:`BatchWriter._write_batch` re-sends those with
:class:`~recommender.store.retry.Backoff` (full jitter, capped) and fails loudly at the cap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from tqdm.auto import tqdm

from recommender.store.codec import dynamo_items, to_dynamo
from recommender.store.dynamo import StoreUnavailable
from recommender.store.items import ItemBlock, StoredItem
from recommender.store.retry import Backoff, RetriesExhausted

BATCH = 25  # DynamoDB's limit per BatchWriteItem


def batches(items: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def attribute_values(items: Iterable[StoredItem] | ItemBlock) -> Iterator[dict[str, dict]]:
    """Each item's DynamoDB attributes; straight from the arrays for an :class:`ItemBlock`."""
    if isinstance(items, ItemBlock):
        return dynamo_items(items)
    return map(to_dynamo, items)


class BatchWriter:
    def __init__(self, client: Any, threads: int = 4, backoff: Backoff | None = None):
        self.client = client
        self.threads = max(1, threads)
        self.backoff = backoff or Backoff()

    def write(self, table: str, items: Iterable[StoredItem] | ItemBlock, *, total: int | None = None,
              progress: bool = False, desc: str = "write") -> int:
        """Write every item to ``table``; the count written.  Fails loudly, never silently short."""
        return self.write_attributes(table, attribute_values(items), total=total, progress=progress, desc=desc)

    def write_attributes(self, table: str, attributes: Iterable[dict[str, dict]], *, total: int | None = None,
                         progress: bool = False, desc: str = "write") -> int:
        """:meth:`write` for items already turned into DynamoDB attribute values."""
        count = 0
        bar = tqdm(total=total, desc=desc, unit="item", disable=not progress, leave=False)
        pending: set[Future] = set()
        try:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="writer") as pool:
                for batch in batches(attributes):
                    if len(pending) >= self.threads * 4:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            bar.update(future.result())
                    pending.add(pool.submit(self._write_batch, table, batch))
                    count += len(batch)
                for future in pending:
                    bar.update(future.result())
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"writing to DynamoDB table {table} failed: {exc}") from exc
        finally:
            bar.close()
        return count

    def _write_batch(self, table: str, batch: list[dict[str, dict]]) -> int:
        """One ``BatchWriteItem`` of attribute values; what comes back unprocessed is re-sent with backoff."""
        requests = [{"PutRequest": {"Item": item}} for item in batch]
        attempt = 0
        while requests:
            response = self.client.batch_write_item(RequestItems={table: requests})
            requests = response.get("UnprocessedItems", {}).get(table, [])
            if requests:
                attempt += 1
                try:
                    self.backoff.sleep(attempt)
                except RetriesExhausted:
                    raise RetriesExhausted(
                        f"{len(requests)} items still unprocessed by DynamoDB after {self.backoff.max_retries} retries"
                    ) from None
        return len(batch)
