"""Usage and environment checks that run before any work.

A data folder that is not there, a table that is a directory or unreadable, ``DATA_DIR=s3://``
without a bucket, or a ``--dry-run`` target that cannot be written are mistakes in how the job
was started, not in the data.  Found after loading and fitting, they waste the run and read like
a crash (``IsADirectoryError`` at the very end); found first, they are one line saying what is
wrong and exit 2.

Only the standard library is imported here, so the generator checks before it pays for pandas,
scikit-learn or TensorFlow.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from recommender.data.schema import FILES
from recommender.data.sources import is_s3


class UsageError(ValueError):
    """The job cannot start as asked; the message names the path or setting and what is wrong."""


def os_reason(exc: OSError) -> str:
    """The operator's words for an OS error: "is a directory", "permission denied"…"""
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, NotADirectoryError):
        return "a part of the path is not a directory"
    return (exc.strerror or str(exc)).lower()


def check_readable(path: Path) -> None:
    """``path`` is a regular file this process can open (as it will be opened: not ``os.access``,
    which answers yes to root even where a read would fail, e.g. on some network filesystems)."""
    if path.is_dir():
        raise UsageError(f"{path}: is a directory")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise UsageError(f"{path}: {os_reason(exc)}") from None


def check_data_dir(location: str | os.PathLike[str], tables: Iterable[str]) -> None:
    """The data location names a bucket or an existing folder holding readable ``tables``.

    S3 objects are not fetched here (that needs the network and credentials, and the loader
    reports a missing object by name); only the URL's shape is checked.
    """
    text = str(location)
    if is_s3(text):
        if not text.removeprefix("s3://").partition("/")[0]:
            raise UsageError(f"DATA_DIR / --data-dir {text!r}: no bucket in the S3 URL (expected s3://bucket/prefix)")
        return
    folder = Path(location)
    if not folder.exists():
        raise UsageError(f"{folder}: data folder not found")
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a directory (DATA_DIR / --data-dir must be a folder or s3://bucket/prefix)")
    for name in tables:
        path = folder / FILES[name]
        if not path.exists():
            raise UsageError(f"{path}: file not found")
        check_readable(path)


def check_output_path(path: Path | None, option: str) -> None:
    """A file the run will write at ``path`` can be created there (parents are created).

    Checked by creating and removing a temporary file beside it: the only test that agrees with
    the later write for every user (root included), filesystem and mount option.
    """
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory (give a file name)")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.", suffix=".check"):
            pass
    except FileExistsError:
        raise UsageError(f"{option} {path}: {parent} is not a directory") from None
    except OSError as exc:
        raise UsageError(f"{option} {path}: {os_reason(exc)}") from None


def check_sink(sink: str, export_uri: str | None, dry_run: Path | None) -> None:
    """``--sink`` with what it needs: an export location (S3 for an import), no ``--dry-run``."""
    if sink == "write":
        if export_uri:
            raise UsageError("--export-uri / EXPORT_URI needs --sink export or --sink import (SINK=write writes to DynamoDB)")
        return
    if dry_run is not None:
        raise UsageError(f"--dry-run writes JSON lines and nothing else; it cannot be combined with --sink {sink}")
    if not export_uri:
        raise UsageError(f"--sink {sink} needs --export-uri DIR|s3://bucket/prefix (or EXPORT_URI)")
    if is_s3(export_uri):
        if not export_uri.removeprefix("s3://").partition("/")[0]:
            raise UsageError(f"--export-uri {export_uri!r}: no bucket in the S3 URL (expected s3://bucket/prefix)")
        return
    if sink == "import":
        raise UsageError(f"--export-uri {export_uri!r}: ImportTable reads from S3; give s3://bucket/prefix")
    folder = Path(export_uri)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--export-uri {folder}: not a directory")
    if folder.is_dir() and any(folder.iterdir()):
        raise UsageError(f"--export-uri {folder}: not empty (an export needs an empty or new folder)")


def preflight(data_dir: str | os.PathLike[str], tables: Iterable[str], outputs: dict[str, Path | None]) -> None:
    """Every check the generator makes before loading: the data location, then each output file."""
    check_data_dir(data_dir, tables)
    for option, path in outputs.items():
        check_output_path(path, option)
