"""Where the tables come from: a local folder, or ``s3://bucket/prefix`` (same four file names).

S3 objects are downloaded to a temporary folder and loaded like local files, so validation,
error messages and memory use are the same whatever the source.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recommender.data.schema import FILES


class DataSourceError(RuntimeError):
    """The source could not be read at all (S3 unreachable, access denied)."""


def is_s3(location: str | os.PathLike[str]) -> bool:
    return str(location).startswith("s3://")


def split_s3(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise DataSourceError(f"{url}: no bucket in the S3 URL")
    return bucket, prefix.strip("/")


def s3_client(endpoint_url: str | None = None):
    """An S3 client; ``endpoint_url`` (``S3_ENDPOINT_URL``) only when set, so that otherwise botocore's
    own configuration applies (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, else AWS)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url) if endpoint_url else boto3.client("s3")


@contextmanager
def local_folder(location: str | os.PathLike[str], names: tuple[str, ...], s3_endpoint_url: str | None = None) -> Iterator[Path]:
    """A local folder holding the tables ``names`` (downloaded first when ``location`` is on S3).

    A table missing from S3 is simply not downloaded: the loader then reports it as not found.
    """
    if not is_s3(location):
        yield Path(location)
        return
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3(str(location))
    client = s3_client(s3_endpoint_url)
    with tempfile.TemporaryDirectory(prefix="similar-users-s3-") as tmp:
        for name in names:
            key = f"{prefix}/{FILES[name]}" if prefix else FILES[name]
            try:
                client.download_file(bucket, key, str(Path(tmp) / FILES[name]))
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("404", "NoSuchKey", "NotFound"):
                    continue
                raise DataSourceError(f"s3://{bucket}/{key}: {code or exc}") from exc
            except BotoCoreError as exc:
                raise DataSourceError(f"s3://{bucket}/{key}: {exc}") from exc
        yield Path(tmp)
