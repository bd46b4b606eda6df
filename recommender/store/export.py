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

Parts are written where the items are: by the generator's threads, by each writer process
(``WRITE_PROCESSES``) for its slices, by each Dask partition for its block (:class:`ExportTarget`
is picklable like :class:`~recommender.store.table_target.TableTarget`).  A part's name comes from
its first user, not from a counter, so a partition that Dask runs twice overwrites its own parts
instead of adding duplicates (which an import would count twice).
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from recommender.store.codec import import_line, import_lines
from recommender.store.items import ItemBlock, StoredItem
from recommender.store.writer import batches

DATA = "data"
MANIFEST = "manifest.json"
FORMAT, COMPRESSION = "DYNAMODB_JSON", "GZIP"
#: Items per part file at most: ~70 MB of DynamoDB JSON with reasons, ~10 MB gzipped; enough
#: parts for ImportTable to spread, few enough to list.
PART_ITEMS = 100_000
#: Users per writer-process slice of an export (one part file each): ImportTable reads at most
#: 50,000 objects, so parts must stay large (a 10M-user, 6-model run: ~3,000 parts).
PROCESS_SLICE_USERS = 20_000
#: zlib level: 1 spends about a quarter of level 6's CPU per item for parts ~18% larger; ImportTable
#: is priced on the uncompressed size, so the larger parts cost only S3 bytes, while the CPU is
#: the nightly batch's (benchmarks/results/export.json).
GZIP_LEVEL = 1

log = logging.getLogger(__name__)


class ExportFailed(RuntimeError):
    """The export location cannot be written or read (no such bucket, access denied, a full disk)."""


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


@functools.cache
def _s3(endpoint_url: str | None) -> Any:
    from recommender.data.sources import s3_client

    return s3_client(endpoint_url)


_s3_lock = threading.Lock()


@dataclass(frozen=True)
class ExportLocation:
    """A folder or ``s3://bucket/prefix`` (plain values: it travels to writer processes and Dask workers)."""

    uri: str
    s3_endpoint_url: str | None = None

    @property
    def bucket_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise ExportFailed(f"{self.uri}: no bucket in the S3 URL (expected s3://bucket/prefix)")
        return bucket, prefix.strip("/")

    def child(self, name: str) -> ExportLocation:
        return ExportLocation(self.uri.rstrip("/") + "/" + name, self.s3_endpoint_url)

    def key(self, relative: str) -> str:
        """The S3 key of ``relative`` (``data/x.json.gz``) under this location."""
        prefix = self.bucket_prefix[1]
        return f"{prefix}/{relative}" if prefix else relative

    def describe(self, relative: str = "") -> str:
        return self.uri.rstrip("/") + ("/" + relative if relative else "")

    def _client(self) -> Any:
        with _s3_lock:  # boto3's client creation is not thread-safe
            return _s3(self.s3_endpoint_url)

    def _fail(self, relative: str, exc: BaseException) -> ExportFailed:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            reason = error.get("Code") or str(exc)
            if (reason in ("404", "NoSuchBucket") and not relative) or reason == "NoSuchBucket":
                reason = f"bucket {self.bucket_prefix[0]} does not exist"
            elif error.get("Message") and error.get("Message") != reason:
                reason = f"{reason} ({error['Message']})"
        elif isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
        else:
            reason = f"{exc.__class__.__name__}: {exc}"
        return ExportFailed(f"{self.describe(relative)}: {reason}")

    def _call(self, relative: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(relative, exc) from exc

    def check_writable(self) -> None:
        """Before any work: the bucket exists and answers (S3), the folder can be created (local)."""
        if is_s3(self.uri):
            bucket, _ = self.bucket_prefix
            self._call("", self._client().head_bucket, Bucket=bucket)
        else:
            try:
                Path(self.uri).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._fail("", exc) from exc

    def put(self, relative: str, data: bytes) -> None:
        if is_s3(self.uri):
            bucket, _ = self.bucket_prefix
            self._call(relative, self._client().put_object, Bucket=bucket, Key=self.key(relative), Body=data)
            return
        path = Path(self.uri) / relative
        try:  # a part appears whole or not at all
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
                tmp.write(data)
            os.replace(tmp.name, path)
        except OSError as exc:
            raise self._fail(relative, exc) from exc

    def get(self, relative: str) -> bytes:
        if is_s3(self.uri):
            bucket, _ = self.bucket_prefix
            return self._call(relative, self._client().get_object, Bucket=bucket, Key=self.key(relative))["Body"].read()
        try:
            return (Path(self.uri) / relative).read_bytes()
        except OSError as exc:
            raise self._fail(relative, exc) from exc

    def list(self, under: str = "") -> list[str]:
        """Every object or file below this location (relative names, sorted); ``under``: only in that folder."""
        if is_s3(self.uri):
            bucket, _ = self.bucket_prefix
            start = self.key(under.rstrip("/") + "/" if under else "")
            strip = len(self.key(""))
            names: list[str] = []
            pages = self._client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start)
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                for page in pages:
                    names += [item["Key"][strip:] for item in page.get("Contents", [])]
            except (BotoCoreError, ClientError) as exc:
                raise self._fail(under, exc) from exc
            return sorted(names)
        root = Path(self.uri)
        folder = root / under if under else root
        if not folder.is_dir():
            return []
        return sorted(str(p.relative_to(root)) for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))

    def remove(self) -> None:
        """Delete everything below this location (what a failed run exported)."""
        if is_s3(self.uri):
            bucket, _ = self.bucket_prefix
            names = self.list()
            for start in range(0, len(names), 1000):
                objects = [{"Key": self.key(name)} for name in names[start:start + 1000]]
                self._call("", self._client().delete_objects, Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            return
        shutil.rmtree(self.uri, ignore_errors=True)


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
    """Where one writer (a thread, a writer process, a Dask partition) puts its parts; ``write`` runs there."""

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


class ExportSink:
    """The pipeline's export sink (``--sink export``): parts as they come, the manifest on commit.

    Nothing is replaced, so there is no lock and no previous coverage; an export location that
    already holds an export is refused (its parts would mix with this run's)."""

    def __init__(self, location: ExportLocation, *, write_processes: int = 1, part_items: int = PART_ITEMS,
                 table: str | None = None):
        self.location = location
        self.target = ExportTarget(location, part_items)
        self.table = table
        self.run_id: str | None = None
        self.counts: dict[str, int] = {}
        self._seq = 0
        self.processes = None
        self.published = False
        if write_processes > 1:
            from recommender.store.process_writer import ProcessWriter

            self.processes = ProcessWriter(None, write_processes, slice_users=min(part_items, PROCESS_SLICE_USERS))

    def begin(self, run_id: str, models: tuple[str, ...]) -> None:
        self.location.check_writable()
        if self.location.list():
            raise ExportFailed(f"{self.location.uri}: already holds files; an export needs an empty location")
        self.run_id = run_id

    def previous_coverage(self) -> dict[str, int]:
        return {}

    def write(self, model_handle: str, items: Iterable[StoredItem], total: int | None = None, progress: bool = False) -> int:
        from recommender.store.process_writer import MIN_ITEMS

        if isinstance(items, ItemBlock):
            if self.processes is not None and len(items) >= MIN_ITEMS:
                count = self.processes.write_target(self.target, items, total=total, progress=progress,
                                                    desc=f"export {model_handle}")
            else:
                count = 0
                with tqdm(total=total, desc=f"export {model_handle}", unit="item", disable=not progress, leave=False) as bar:
                    for block in items.split(self.target.part_items):
                        written = self.target.write(block)
                        bar.update(written)
                        count += written
        else:
            self._seq += 1
            count = self.target.write(items, name=f"items-{self._seq:06d}")
        self.written(model_handle, count)
        return count

    def partition_target(self) -> ExportTarget:
        """Each Dask partition writes its own parts."""
        return self.target

    def written(self, model_handle: str, count: int) -> None:
        self.counts[model_handle] = self.counts.get(model_handle, 0) + count

    def prepare(self, summary: str = "") -> None:
        pass

    def commit(self, summary: str = "") -> dict[str, Any]:
        """Write the manifest (last: an export with a manifest is complete); it is also returned."""
        assert self.run_id is not None, "begin() first"
        written = manifest(self.run_id, self.counts, summary, self.table)
        self.location.put(MANIFEST, (json.dumps(written, indent=2) + "\n").encode())
        self.published = True
        return written

    def abort(self) -> None:
        """Stop the writer processes, then delete every file of the export (best effort); never
        once the manifest is written (the export is complete then)."""
        if self.published:
            raise RuntimeError(f"{self.location.uri} is complete; it cannot be aborted")
        if self.processes is not None:
            self.processes.terminate()
        if self.run_id is None:
            return
        try:
            self.location.remove()
        except ExportFailed as exc:
            log.warning("could not remove the failed export %s: %s", self.location.uri, exc)

    def cleanup(self) -> list[str]:
        return []

    def release_lock(self) -> None:
        if self.processes is not None:
            self.processes.close()
