"""Dry-run output: the items the generator would write, one JSON object per line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from tqdm.auto import tqdm


class JsonLinesWriter:
    """Writes items to a file atomically (temp file + rename), so a reader never sees half a run."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def write(self, items: Iterable[dict], total: int | None = None, progress: bool = False, desc: str = "write") -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        count = 0
        with tmp.open("w", encoding="utf-8") as out:
            for item in tqdm(items, total=total, desc=desc, unit="item", disable=not progress, leave=False):
                out.write(json.dumps(item, separators=(",", ":")) + "\n")
                count += 1
        os.replace(tmp, self.path)
        return count
