"""Where an export lives: a folder or ``s3://bucket/prefix``, read and written the same way.

Its own module because the export format (:mod:`recommender.store.export`) and the sinks that
write it (:mod:`recommender.store.export_sink`, the import) do not care which of the two it is: a
part appears whole or not at all in both (a temp file renamed, one ``PutObject``).
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    """A folder or ``s3://bucket/prefix`` (plain values: it travels to the partitions' worker processes and Dask workers)."""

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
