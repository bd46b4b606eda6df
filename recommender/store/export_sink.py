"""The export sink (``--sink export``): a run as files in DynamoDB's import format, nothing published.

Parts are written as they come (:class:`~recommender.store.export.ExportTarget`, by the driver
or by each partition where it runs), the manifest last, on commit: an export with a manifest is
complete.  The import (:mod:`recommender.store.import_publisher`) writes its export through this
sink too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from tqdm.auto import tqdm

from recommender.store.export import MANIFEST, PART_ITEMS, ExportTarget, manifest
from recommender.store.export_location import ExportFailed, ExportLocation
from recommender.store.items import ItemBlock, StoredItem

log = logging.getLogger(__name__)


class ExportSink:
    """The pipeline's export sink (``--sink export``): parts as they come, the manifest on commit.

    Nothing is replaced, so there is no lock and no previous coverage; an export location that
    already holds an export is refused (its parts would mix with this run's)."""

    def __init__(self, location: ExportLocation, *, part_items: int = PART_ITEMS, table: str | None = None):
        self.location = location
        self.exporter = ExportTarget(location, part_items)
        self.table = table
        self.run_id: str | None = None
        self._seq = 0
        self.published = False

    def begin(self, run_id: str, models: tuple[str, ...]) -> dict[str, int]:
        """An empty location, checked writable; nothing is replaced (no coverage baseline)."""
        self.location.check_writable()
        if self.location.list():
            raise ExportFailed(f"{self.location.uri}: already holds files; an export needs an empty location")
        self.run_id = run_id
        return {}

    def write(self, model_handle: str, items: Iterable[StoredItem], total: int | None = None, progress: bool = False) -> int:
        """The driver's items, in parts of its own (a partition writes through :meth:`target`)."""
        if not isinstance(items, ItemBlock):
            self._seq += 1
            return self.exporter.write(items, name=f"items-{self._seq:06d}")
        count = 0
        with tqdm(total=total, desc=f"export {model_handle}", unit="item", disable=not progress, leave=False) as bar:
            for block in items.split(self.exporter.part_items):
                written = self.exporter.write(block)
                bar.update(written)
                count += written
        return count

    def target(self) -> ExportTarget:
        """Each partition writes its own parts."""
        return self.exporter

    def write_manifest(self, counts: dict[str, int], summary: str = "") -> dict[str, Any]:
        """Write the manifest (last: an export with a manifest is complete); it is also returned."""
        assert self.run_id is not None, "begin() first"
        written = manifest(self.run_id, counts, summary, self.table)
        self.location.put(MANIFEST, (json.dumps(written, indent=2) + "\n").encode())
        return written

    def commit(self, counts: dict[str, int], summary: str = "", at_commit_point: Callable[[], None] = lambda: None) -> None:
        at_commit_point()
        self.write_manifest(counts, summary)
        self.published = True

    def abort(self) -> None:
        """Delete every file of the export (best effort); never once the manifest is written by
        commit (the export is complete then)."""
        if self.published:
            raise RuntimeError(f"{self.location.uri} is complete; it cannot be aborted")
        try:
            if self.run_id is not None:
                self.location.remove()
        except ExportFailed as exc:
            log.warning("could not remove the failed export %s: %s", self.location.uri, exc)
        finally:
            self.finish(clean_up=False)

    def finish(self, clean_up: bool = True) -> list[str]:
        return []
