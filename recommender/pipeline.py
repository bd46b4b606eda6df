"""The batch job: load the tables, fit every model, search all users' neighbours, then write.

All models are fitted and searched *before* the first write, so a bad table or a model that
fails leaves the database as the previous run left it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from recommender.data.loader import load_tables
from recommender.models.registry import MODEL_HANDLES, create_model
from recommender.store.items import build_items
from recommender.topk import Neighbours

log = logging.getLogger(__name__)


class ItemWriter(Protocol):
    def write(self, items, total: int | None = None, progress: bool = False, desc: str = "write") -> int: ...


@dataclass
class ModelReport:
    handle: str
    users_covered: int = 0
    fit_seconds: float = 0.0
    search_seconds: float = 0.0
    write_seconds: float = 0.0
    items_written: int = 0


@dataclass
class RunReport:
    run_id: str
    generated_at: str
    load_seconds: float = 0.0
    rows_read: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    models: list[ModelReport] = field(default_factory=list)
    total_seconds: float = 0.0


def new_run_id(now: datetime) -> str:
    """Sortable and unique: UTC time plus a random suffix."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def run(
    data_dir: Path | str,
    writer: ItemWriter,
    models: tuple[str, ...] = MODEL_HANDLES,
    top_n: int = 10,
    *,
    block_mb: int = 256,
    progress: bool = True,
    model_params: dict[str, dict] | None = None,
) -> RunReport:
    """Run the whole batch job and return what it did, stage by stage."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    report = RunReport(run_id=new_run_id(now), generated_at=now.isoformat().replace("+00:00", "Z"))
    instances = {handle: create_model(handle, **(model_params or {}).get(handle, {})) for handle in models}
    needed = tuple(sorted({t for m in instances.values() for t in m.tables}))

    t0 = time.perf_counter()
    tables = load_tables(data_dir, needed)
    report.load_seconds = time.perf_counter() - t0
    report.rows_read, report.dropped = tables.rows_read, tables.dropped

    results: dict[str, Neighbours] = {}
    for handle, model in instances.items():
        entry = ModelReport(handle)
        t0 = time.perf_counter()
        model.fit(tables)
        entry.fit_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        results[handle] = model.similar_users(top_n, block_mb=block_mb, progress=progress)
        entry.search_seconds = time.perf_counter() - t0
        entry.users_covered = results[handle].covered
        log.info(
            "%s: %s users covered, fit %.1fs, top-%d search %.1fs",
            handle, f"{entry.users_covered:,}", entry.fit_seconds, top_n, entry.search_seconds,
        )
        report.models.append(entry)

    for entry in report.models:
        t0 = time.perf_counter()
        items = build_items(entry.handle, results[entry.handle], report.run_id, report.generated_at)
        entry.items_written = writer.write(items, total=entry.users_covered, progress=progress, desc=f"write {entry.handle}")
        entry.write_seconds = time.perf_counter() - t0
        log.info("%s: wrote %s items in %.1fs", entry.handle, f"{entry.items_written:,}", entry.write_seconds)
    report.total_seconds = time.perf_counter() - started
    return report
