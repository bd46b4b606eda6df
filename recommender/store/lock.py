"""The generator lock: a lease in the control table, renewed by a heartbeat thread.

A lease rather than a plain flag because a generator can die without cleaning up (SIGKILL, a
lost machine): a second generator refuses while the lease is live, and a dead one blocks the
next run for at most one lease.  A run that lost its lease (renewal found another owner) must
not publish; :meth:`GeneratorLock.condition` lets the publishing transaction check ownership
in the same atomic step.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from recommender.store.control import LOCK_KEY
from recommender.store.dynamo import StoreUnavailable, error_code
from recommender.store.marshal import from_attributes, to_attributes

log = logging.getLogger(__name__)


class LockHeld(RuntimeError):
    """Another generator run holds the lock."""


class LockLost(RuntimeError):
    """Our lease expired and someone else may have taken over: this run must not publish."""


_OWNER = {"ExpressionAttributeNames": {"#o": "owner"}}


class GeneratorLock:
    def __init__(self, client: Any, control_table: str, lease_seconds: float = 120.0):
        self.client = client
        self.table = control_table
        self.lease_seconds = lease_seconds
        self.owner: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def _mine(self) -> dict[str, Any]:
        return {"ConditionExpression": "#o = :me", **_OWNER, "ExpressionAttributeValues": to_attributes({":me": self.owner})}

    def acquire(self, owner: str) -> None:
        """Take the lease (free, expired or already ours) or raise :class:`LockHeld` naming the holder."""
        now = time.time()
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **LOCK_KEY,
                    **to_attributes({"owner": owner, "host": socket.gethostname(), "pid": os.getpid(),
                                     "acquired_at": int(now), "expires_at": round(now + self.lease_seconds, 3)}),
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR #o = :me",
                **_OWNER,
                ExpressionAttributeValues=to_attributes({":now": round(now, 3), ":me": owner}),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise StoreUnavailable(f"taking the generator lock failed: {error_code(exc)}") from exc
            holder = from_attributes(self.client.get_item(TableName=self.table, Key=LOCK_KEY,
                                                          ConsistentRead=True).get("Item", {}))
            left = float(holder.get("expires_at", now)) - now
            raise LockHeld(
                f"another generator run ({holder.get('owner', '?')} on {holder.get('host', '?')}, "
                f"pid {holder.get('pid', '?')}) holds the lock; it expires in {max(0, left):.0f}s unless renewed"
            ) from None
        self.owner = owner
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._renew_forever, daemon=True, name="lock-heartbeat")
        self._heartbeat.start()

    def _renew_forever(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=LOCK_KEY,
                    UpdateExpression="SET expires_at = :exp",
                    ConditionExpression="#o = :me",
                    **_OWNER,
                    ExpressionAttributeValues=to_attributes({":exp": round(time.time() + self.lease_seconds, 3),
                                                             ":me": self.owner}),
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    log.error("generator lock lost: another run took it over")
                    self.lost = True
                    return
                log.warning("could not renew the generator lock: %s", error_code(exc))
            except BotoCoreError as exc:
                log.warning("could not renew the generator lock: %s", exc)

    def condition(self) -> dict[str, Any]:
        """A transaction item that fails unless we still own the lock."""
        return {"ConditionCheck": {"TableName": self.table, "Key": LOCK_KEY, **self._mine()}}

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat:
            self._heartbeat.join(timeout=5)
        if self.owner is None:
            return
        try:
            self.client.delete_item(TableName=self.table, Key=LOCK_KEY, **self._mine())
        except (ClientError, BotoCoreError):
            pass  # not ours any more, or the database is gone: the lease runs out by itself
