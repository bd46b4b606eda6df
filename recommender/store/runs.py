"""Run records and retention: which runs exist, which finished, and which tables can go.

A run's table is dropped in one call when it is neither pointed at nor among the newest
``KEEP_RUNS`` complete runs; that includes the leftovers of runs that died before publishing,
so a crashed generator costs storage only until the next run.
"""

from __future__ import annotations

import logging
import time

from botocore.exceptions import ClientError

from recommender.publishing import RUN_ID, RunExists
from recommender.store import control
from recommender.store.dynamo import DynamoStore, StoreUnavailable, error_code
from recommender.store.marshal import from_attributes, to_attributes

log = logging.getLogger(__name__)


class RunRecords:
    def __init__(self, store: DynamoStore):
        self.store = store
        self.client = store.client

    def started(self, run_id: str, models: tuple[str, ...]) -> None:
        """Record the run as ``writing``; :class:`~recommender.publishing.RunExists` when any record of
        ``run_id`` exists (published, kept, failed or being written): that run is left as it is."""
        item = {"pk": control.RUN, "sk": run_id, "status": control.WRITING, "started_at": int(time.time()),
                "models": list(models)}
        try:
            self.client.put_item(TableName=self.store.control_table, Item=to_attributes(item),
                                 ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise StoreUnavailable(f"recording run {run_id} failed: {error_code(exc)}") from exc
            record = from_attributes(self.client.get_item(TableName=self.store.control_table, Key=control.run_key(run_id),
                                                          ConsistentRead=True).get("Item", {}))
            raise RunExists(f"run {run_id} exists already (status {record.get('status', '?')}); "
                            f"a run id is published once: nothing was changed") from None

    def refuse_existing(self, run_id: str) -> None:
        """:class:`~recommender.publishing.RunExists` when a record or a table of ``run_id`` exists
        (:meth:`started` checks the record again, atomically, once the lock is held)."""
        record = from_attributes(self.client.get_item(TableName=self.store.control_table, Key=control.run_key(run_id),
                                                      ConsistentRead=True).get("Item", {}))
        if record:
            raise RunExists(f"run {run_id} exists already (status {record.get('status', '?')}); "
                            f"a run id is published once: nothing was changed")
        table = self.store.run_table(run_id)
        if self.store.table_exists(table):
            raise RunExists(f"table {table} exists already; a run's table must be new: nothing was changed")

    def forget(self, run_id: str) -> None:
        """Delete the record of a run that never published (its table is gone)."""
        self.client.delete_item(TableName=self.store.control_table, Key=control.run_key(run_id))

    def failed(self, run_id: str) -> None:
        self.client.update_item(
            TableName=self.store.control_table,
            Key=control.run_key(run_id),
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_attributes({":s": control.FAILED}),
        )

    def completed_action(self, run_id: str, counts: dict[str, int], summary: str, now: int) -> dict:
        """The transaction item that marks ``run_id`` complete (published with its pointers)."""
        return {
            "Update": {
                "TableName": self.store.control_table,
                "Key": control.run_key(run_id),
                "UpdateExpression": "SET #s = :complete, finished_at = :now, item_counts = :counts, summary = :summary",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": to_attributes(
                    {":complete": control.COMPLETE, ":now": now, ":counts": counts, ":summary": summary}),
            }
        }

    def clean_up(self, keep_runs: int, current: str | None) -> list[str]:
        """Drop runs that are neither pointed at nor among the newest ``keep_runs`` complete ones."""
        runs = sorted(self.store.query_control(control.RUN), key=lambda r: r["sk"], reverse=True)
        pointed = {p.run_id for p in self.store.pointers()}
        complete = [r["sk"] for r in runs if r.get("status") == control.COMPLETE]
        keep = pointed | set(complete[: max(1, keep_runs)]) | {current}
        dropped = []
        for record in runs:
            run_id = record["sk"]
            if run_id in keep:
                continue
            if not RUN_ID.fullmatch(run_id):  # no table can have such a name: only the record is there
                log.warning("removing the record of %r, which is not a run id", run_id)
                self.forget(run_id)
                dropped.append(run_id)
                continue
            try:
                self.store.drop_table(self.store.run_table(run_id))
            except ClientError as exc:
                if error_code(exc) != "ResourceInUseException":
                    raise
                # Still being created: an ImportTable that a stopped run could not cancel.  Its
                # record stays, so that a later run drops it once the import has ended.
                log.warning("run %s: its table is still being created; a later run will drop it", run_id)
                continue
            self.forget(run_id)
            dropped.append(run_id)
        if dropped:
            log.info("removed %d old or unfinished run(s): %s", len(dropped), ", ".join(dropped))
        return dropped
