"""Dry-run sink: the items the generator would publish, one JSON object per line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from tqdm.auto import tqdm

from recommender.store.items import StoredItem


class JsonLinesSink:
    """Same lifecycle as the DynamoDB publisher; the file appears whole (temp file + rename) on commit."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self._out: IO[str] | None = None
        self.published = False

    def begin(self, run_id: str, models: tuple[str, ...]) -> dict[str, int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = self.tmp.open("w", encoding="utf-8")
        return {}  # a dry run replaces nothing

    def write(self, model_handle: str, items: Iterable[StoredItem], total: int | None = None, progress: bool = False) -> int:
        assert self._out is not None, "begin() first"
        count = 0
        for item in tqdm(items, total=total, desc=f"write {model_handle}", unit="item", disable=not progress, leave=False):
            self._out.write(json.dumps(item.to_record(), separators=(",", ":")) + "\n")
            count += 1
        return count

    def target(self) -> None:
        """A file on the driver: Dask partitions send their items back and the driver writes them, in order."""
        return None

    def commit(self, counts: dict[str, int], summary: str = "", at_commit_point: Callable[[], None] = lambda: None) -> None:
        assert self._out is not None
        self._out.close()
        at_commit_point()
        os.replace(self.tmp, self.path)
        self.published = True

    def abort(self) -> None:
        if self.published:
            raise RuntimeError(f"{self.path} is published; it cannot be aborted")
        if self._out is not None:
            self._out.close()
            self.tmp.unlink(missing_ok=True)

    def finish(self, clean_up: bool = True) -> list[str]:
        return []
