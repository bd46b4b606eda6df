"""A run in DynamoDB's import format: gzip DynamoDB-JSON parts and a manifest, in a folder or on S3.

Why: ``ImportTable`` builds a new table from such files without consuming write capacity, and a
run is already published as a new table behind a pointer, so a run of millions of users can be
published by one import instead of millions of writes (:mod:`recommender.store.import_publisher`).
The same export loads into DynamoDB Local with the batch writer (``similar-users-load``).

Layout under the export location (a folder, or ``s3://bucket/prefix``):

* ``data/<model_handle>/<first user>-<n>.json.gz``: one ``{"Item": {...}}`` per line, the attribute
  values :func:`~recommender.store.codec.dynamo_items` gives, i.e. exactly what the write path
  puts (:mod:`recommender.store.codec` is their one home; it writes these lines as text straight
  from the arrays, :func:`~recommender.store.codec.import_lines`);
* ``manifest.json``: run id, each model's item count and ``lists_checksum``, the table's key
  schema, the code's commit; written last, so an export with a manifest is complete.

Parts are written where the items are: by the generator for what it writes itself, by each
partition (a worker process, a Dask task) for its block (:class:`ExportTarget` is picklable like
:class:`~recommender.store.publisher.TableTarget`).  A part's name comes from its first user, not
from a counter, so a partition that runs twice (a retry) overwrites its own parts instead of adding
duplicates (which an import would count twice).
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any

from recommender.store.codec import import_line, import_lines
from recommender.store.export_location import ExportLocation
from recommender.store.items import ItemBlock, StoredItem
from recommender.store.writer import batches

DATA = "data"
MANIFEST = "manifest.json"
FORMAT, COMPRESSION = "DYNAMODB_JSON", "GZIP"
#: Items per part file at most: ~70 MB of DynamoDB JSON with reasons, ~10 MB gzipped; enough
#: parts for ImportTable to spread, few enough to list.
PART_ITEMS = 100_000
#: zlib level: 1 spends about a quarter of level 6's CPU per item for parts ~18% larger; ImportTable
#: is priced on the uncompressed size, so the larger parts cost only S3 bytes, while the CPU is
#: the nightly batch's (benchmarks/results/export.json).
GZIP_LEVEL = 1

def encode_part(lines: Iterator[str], limit: int | None = None) -> tuple[bytes, int, int]:
    """One gzip part of the next ``limit`` lines (items) of ``lines`` (all when None): its bytes, item
    count and uncompressed size (what an import is priced on).  Compressed as it goes: a part's
    memory is its gzip bytes, not its text."""
    buffer = io.BytesIO()
    count = size = 0
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as out:
        for batch in batches(islice(lines, limit), 1024):
            text = "".join(batch).encode()
            out.write(text)
            count += len(batch)
            size += len(text)
    return buffer.getvalue(), count, size


def read_part(data: bytes) -> Iterator[dict[str, dict]]:
    """The items of one part (gzip or plain DynamoDB JSON lines)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    for line in data.decode().splitlines():
        if line.strip():
            yield json.loads(line)["Item"]


@dataclass(frozen=True)
class ExportTarget:
    """Where one writer (the driver, a partition) puts its parts; ``write`` runs there."""

    location: ExportLocation
    part_items: int = PART_ITEMS

    def write(self, items: Iterable[StoredItem] | ItemBlock, name: str | None = None) -> int:
        """Every item of ``items`` as parts ``data/<model>/<name>-<n>.json.gz``; the count written.

        ``name`` defaults to the block's first user, so that writing the same block again
        replaces its parts (a retried partition)."""
        if name is None:
            if not isinstance(items, ItemBlock):
                raise ValueError("a name is needed for items that are not an ItemBlock")
            if len(items.neighbours.users) == 0:
                return 0
            name = f"{int(items.neighbours.users[0]):012d}"
        if isinstance(items, ItemBlock):  # text straight from the arrays; the model is the block's
            lines, model = import_lines(items), items.model_handle
        else:
            rest = iter(items)
            first = next(rest, None)
            if first is None:
                return 0
            lines, model = map(import_line, chain([first], rest)), first.model_handle
        count = index = 0
        while True:
            data, written, _ = encode_part(lines, self.part_items)
            if not written:
                return count
            self.location.put(f"{DATA}/{model}/{name}-{index:04d}.json.gz", data)
            count += written
            index += 1


def code_commit() -> str:
    """The commit of the code that computed the run (``git describe``), or ``unknown`` outside a checkout."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def manifest(run_id: str, counts: dict[str, int], summary: str, table: str | None) -> dict[str, Any]:
    """What ``manifest.json`` holds; ``summary`` is the run report's JSON (each model's ``lists_checksum``)."""
    from recommender.store.dynamo import RUN_TABLE_KEYS

    checksums: dict[str, str] = {}
    if summary:
        checksums = {m["handle"]: m.get("lists_checksum", "") for m in json.loads(summary).get("models", [])}
    return {
        "run_id": run_id,
        "table": table,
        "format": FORMAT,
        "compression": COMPRESSION,
        "data": f"{DATA}/",
        "items": sum(counts.values()),
        "models": {model: {"items": count, "lists_checksum": checksums.get(model, "")} for model, count in counts.items()},
        "key_schema": [{"AttributeName": name, "KeyType": kind} for name, _, kind in RUN_TABLE_KEYS],
        "attribute_definitions": [{"AttributeName": name, "AttributeType": type_} for name, type_, _ in RUN_TABLE_KEYS],
        "commit": code_commit(),
    }


