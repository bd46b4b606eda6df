"""The control table's layout, in one place: what the generator writes and the API reads.

``<prefix>-control`` has partition key ``pk`` (S) and sort key ``sk`` (S) and holds three kinds
of item:

* ``pointer`` / ``<model_handle>``: the run that serves a model (``run_id``, ``table``,
  ``items``, ``published_at``).  Readers go through it; a run flips all its pointers at once.
* ``run`` / ``<run_id>``: one record per generator run (``status`` writing → complete or
  failed, ``started_at``, ``finished_at``, ``item_counts``, ``summary``).
* ``lock`` / ``generator``: the generator's lease (``owner``, ``host``, ``pid``,
  ``acquired_at``, ``expires_at``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from recommender.store.marshal import to_attributes

CONTROL_SUFFIX = "control"
POINTER = "pointer"
RUN = "run"
LOCK = "lock"

WRITING, COMPLETE, FAILED = "writing", "complete", "failed"


def key(kind: str, name: str) -> dict[str, dict[str, Any]]:
    return to_attributes({"pk": kind, "sk": name})


LOCK_KEY = key(LOCK, "generator")


def pointer_key(model_handle: str) -> dict[str, dict[str, Any]]:
    return key(POINTER, model_handle)


def run_key(run_id: str) -> dict[str, dict[str, Any]]:
    return key(RUN, run_id)


@dataclass(frozen=True)
class Pointer:
    """Which run serves a model; run ids sort by time, so a newer run has a larger id."""

    model_handle: str
    run_id: str
    table: str
    items: int
    published_at: int

    def to_item(self) -> dict[str, dict[str, Any]]:
        fields = asdict(self)
        del fields["model_handle"]  # it is the sort key
        return {**pointer_key(self.model_handle), **to_attributes(fields)}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Pointer:
        """From a plain (deserialised) control item."""
        return cls(str(item["sk"]), str(item["run_id"]), str(item["table"]), int(item.get("items", 0)),
                   int(item.get("published_at", 0)))
