"""Publishing a run by ``ImportTable`` (``--sink import``): no write capacity, whatever the run's size.

The run is the write path's run, composed, not subclassed: a :class:`~recommender.store.publisher.RunPublisher`
(the lock, the run records, the same table name, the same pointer transaction) whose table is
filled by :class:`ImportTableFill`: its items go to an export on S3 (:mod:`recommender.store.export_sink`)
instead of ``BatchWriteItem``.  At commit:

1. the export's manifest is written (the item count each model will have);
2. one ``ImportTable`` builds the run's table from the export's ``data/`` (DynamoDB JSON, GZIP,
   the key schema the write path creates, billing mode from ``IMPORT_BILLING_MODE``);
3. ``DescribeImport`` is polled every ``IMPORT_POLL_SECONDS`` for at most ``IMPORT_TIMEOUT_SECONDS``;
4. the import must be ``COMPLETED`` with ``ErrorCount`` 0 and ``ImportedItemCount`` equal to the
   manifest's count (an item DynamoDB skipped, or a stray object under the prefix, is a failure);
5. the pointers flip in :meth:`RunPublisher.commit`'s conditional transaction.

Anything else fails the run: :meth:`abort` drops its table and record and deletes its export, and
the previous run keeps serving.  An import cannot be cancelled, so a run stopped while one is in
progress (SIGTERM) leaves a table being created, and its record marked failed; both are dropped as
the leftovers of a failed run by the next run's clean-up.  Each run exports under ``EXPORT_URI/<run_id>/``, because ImportTable
reads every object under its prefix: runs must never share one.  The exports of published runs
are kept (``similar-users-load`` loads one into DynamoDB Local); an S3 lifecycle rule expires them.

DynamoDB Local has no ImportTable: there the write path (``--sink write``) is the one to use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from recommender.publishing import RunExists
from recommender.store.dynamo import DynamoStore, error_code
from recommender.store.export import COMPRESSION, FORMAT, MANIFEST, ExportTarget
from recommender.store.export_location import ExportFailed, ExportLocation
from recommender.store.export_sink import ExportSink
from recommender.store.items import StoredItem
from recommender.store.publisher import RunPublisher

log = logging.getLogger(__name__)


class ImportFailed(RuntimeError):
    """ImportTable refused, failed, timed out, or imported another number of items than exported."""


class ImportTableFill:
    """How ``--sink import`` fills a run's table: an export on S3 while the run computes, then one
    ImportTable in :meth:`fill`, the long part, before the commit point (a signal while waiting for
    the import still aborts the run).  Composed into a :class:`RunPublisher` by :func:`import_publisher`."""

    def __init__(self, store: DynamoStore, export: ExportLocation, *, poll_seconds: float = 10.0,
                 timeout_seconds: float = 6 * 3600, billing_mode: str = "PAY_PER_REQUEST", read_capacity: int = 5,
                 write_capacity: int = 5, sleep: Callable[[float], None] = time.sleep):
        if not export.uri.startswith("s3://"):
            raise ExportFailed(f"{export.uri}: ImportTable reads from S3; --export-uri must be s3://bucket/prefix")
        self.store = store
        self.base = export
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.billing_mode = billing_mode
        self.capacity = (read_capacity, write_capacity)
        self.sleep = sleep
        self.export: ExportSink | None = None
        self.table: str | None = None
        #: The table this run created: from the moment the import started (an abort drops it).
        self.created: str | None = None
        self.run_id: str | None = None
        self.manifest: dict[str, Any] | None = None
        self.import_arn: str | None = None
        self._import_ended = False  # the import is over (whatever its outcome): its table cannot appear later

    def open(self, run_id: str) -> None:
        """No table yet (ImportTable creates it; it must not exist): the run's export location instead."""
        table = self.store.run_table(run_id)
        if self.store.table_exists(table):
            raise RunExists(f"table {table} exists already; a run's table must be new: nothing was changed")
        self.run_id, self.table = run_id, table
        self.export = ExportSink(self.base.child(run_id), table=table)
        self.export.begin(run_id, ())

    def write(self, model_handle: str, items: Iterable[StoredItem], total: int | None, progress: bool) -> int:
        assert self.export is not None
        return self.export.write(model_handle, items, total, progress)

    def target(self) -> ExportTarget:
        assert self.export is not None
        return self.export.target()

    def fill(self, counts: dict[str, int], summary: str) -> None:
        """The export's manifest, then the import and its checks."""
        assert self.export is not None
        self.manifest = self.export.write_manifest(counts, summary)
        self._import(self.manifest)

    def _import(self, manifest: dict[str, Any]) -> None:
        assert self.export is not None and self.table is not None
        bucket, _ = self.export.location.bucket_prefix
        parameters: dict[str, Any] = {
            "TableName": self.table,
            "AttributeDefinitions": manifest["attribute_definitions"],
            "KeySchema": manifest["key_schema"],
            "BillingMode": self.billing_mode,
        }
        if self.billing_mode == "PROVISIONED":
            parameters["ProvisionedThroughput"] = {"ReadCapacityUnits": self.capacity[0],
                                                   "WriteCapacityUnits": self.capacity[1]}
        source = {"S3Bucket": bucket, "S3KeyPrefix": self.export.location.key(manifest["data"])}
        try:
            started = self.store.client.import_table(
                ClientToken=self.run_id, S3BucketSource=source, InputFormat=FORMAT, InputCompressionType=COMPRESSION,
                TableCreationParameters=parameters)["ImportTableDescription"]
        except (ClientError, BotoCoreError) as exc:
            raise ImportFailed(f"ImportTable of {self.export.location.describe('data/')} into {self.table} was refused: "
                               f"{error_code(exc) or exc}") from exc
        self.import_arn = started["ImportArn"]
        self.created = self.table  # the import creates it: from here on an abort drops it
        log.info("importing %s items into %s (%s)", f"{manifest['items']:,}", self.table, self.import_arn)
        description = self._wait(started)
        self._import_ended = True
        status, errors = description.get("ImportStatus"), description.get("ErrorCount", 0)
        imported = description.get("ImportedItemCount", 0)
        where = f"ImportTable of {self.export.location.describe('data/')} into {self.table}"
        if status != "COMPLETED":
            reason = description.get("FailureCode") or ""
            message = description.get("FailureMessage") or ""
            raise ImportFailed(f"{where}: {status} ({': '.join(filter(None, (reason, message))) or 'no reason given'})")
        if errors:
            raise ImportFailed(f"{where}: {errors:,} items could not be imported")
        if imported != manifest["items"]:
            raise ImportFailed(f"{where}: imported {imported:,} items, the export's {MANIFEST} counts {manifest['items']:,}")
        self.store.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        log.info("imported %s items into %s", f"{imported:,}", self.table)

    def _wait(self, description: dict[str, Any]) -> dict[str, Any]:
        """DescribeImport until the import ends, or :class:`ImportFailed` at the timeout."""
        deadline = time.monotonic() + self.timeout_seconds
        while description.get("ImportStatus") == "IN_PROGRESS":
            if time.monotonic() >= deadline:
                raise ImportFailed(f"ImportTable into {self.table} still in progress after {self.timeout_seconds:g}s "
                                   f"(IMPORT_TIMEOUT_SECONDS); not published")
            self.sleep(self.poll_seconds)
            try:
                description = self.store.client.describe_import(ImportArn=self.import_arn)["ImportTableDescription"]
            except (ClientError, BotoCoreError) as exc:
                raise ImportFailed(f"DescribeImport of {self.import_arn} failed: {error_code(exc) or exc}") from exc
        return description

    def _table_may_still_appear(self) -> bool:
        return self.import_arn is not None and not self._import_ended

    def may_still_appear(self) -> bool:
        return self.import_arn is not None and not self._import_ended

    def stop(self) -> None:
        """The run's export deleted (the table and record are the publisher's)."""
        if self.export is not None:
            self.export.abort()

    def close(self) -> None:
        if self.export is not None:
            self.export.finish()


def import_publisher(store: DynamoStore, export: ExportLocation, *, lease_seconds: float = 120.0, keep_runs: int = 2,
                     **options: Any) -> RunPublisher:
    """The sink of ``--sink import``: the publish lifecycle of :class:`RunPublisher`, its table filled by ImportTable."""
    return RunPublisher(store, ImportTableFill(store, export, **options), lease_seconds=lease_seconds, keep_runs=keep_runs)
