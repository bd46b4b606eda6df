"""The API's cache of run pointers: one per server, shared by all its worker processes.

Why shared: with one cache per process, for up to ``POINTER_CACHE_SECONDS`` after a publish one
worker could already answer from the new run while another still answered from the old one, so
a client could see the new run, then the old one again.  Here every process of a server reads
the same entry per model, so they agree, and the entry only ever moves to the result of a
*later-started* consistent read.

The rule that makes answers monotonic: an entry records when the read that produced it started
(wall clock, the same for every process of a host).  A read that started earlier than the
entry's never replaces it: a slow read that began before a publish cannot put back the old run
after a faster read saw the new one.  A later read always wins, so a deliberate rollback of a
pointer (an operator pointing a model at an older run) still shows within the cache period.

``directory`` (``POINTER_CACHE_DIR``; gunicorn_conf.py makes one per server instance) holds one
small JSON file per (table prefix, model), replaced atomically and updated under an exclusive
``flock``.  Without a directory (``run_server.py``, tests) the same rule applies within the process.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import NamedTuple

from recommender.store.control import Pointer


class Entry(NamedTuple):
    read_at: float  # time.time() when the read that produced it started
    pointer: Pointer | None  # None: the model has no published run


class PointerCache:
    def __init__(self, prefix: str, directory: str | os.PathLike[str] | None = None):
        self.prefix = prefix
        self.directory = Path(directory) if directory else None
        self._memory: dict[str, Entry] = {}
        self._lock = threading.Lock()
        # The last file read per model and its identity: a request whose stat matches reuses the
        # decoded entry (one stat instead of open, read and JSON decode).
        self._read: dict[str, tuple[tuple[int, int, int], Entry]] = {}

    def load(self, model_handle: str) -> Entry | None:
        """The newest read of ``model_handle``'s pointer, by any process of this server."""
        if self.directory is None:
            return self._memory.get(model_handle)
        path = self._path(model_handle)
        try:
            # Every write is a new file renamed over the old one (``offer``), so a changed entry has
            # a new inode, modification time or size.
            info = os.stat(path)
            identity = (info.st_ino, info.st_mtime_ns, info.st_size)
            known = self._read.get(model_handle)
            if known is not None and known[0] == identity:
                return known[1]
            entry = _decode(path.read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none yet, or unreadable: read the database instead
        self._read[model_handle] = (identity, entry)
        return entry

    def offer(self, model_handle: str, read_at: float, pointer: Pointer | None) -> Entry:
        """Keep this read unless one that started later is already there; return the entry kept."""
        offered = Entry(read_at, pointer)
        if self.directory is None:
            with self._lock:
                kept = self._memory.get(model_handle)
                if kept is None or kept.read_at <= read_at:
                    self._memory[model_handle] = kept = offered
                return kept
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(model_handle)
        with self._lock, open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            kept = self.load(model_handle)
            if kept is None or kept.read_at <= read_at:
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(_encode(offered))
                os.replace(tmp, path)
                kept = offered
            return kept

    def _path(self, model_handle: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{self.prefix}.{model_handle}.json"


def _encode(entry: Entry) -> bytes:
    pointer = dataclasses.asdict(entry.pointer) if entry.pointer is not None else None
    return json.dumps({"read_at": entry.read_at, "pointer": pointer}).encode()


def _decode(data: bytes) -> Entry:
    raw = json.loads(data)
    pointer = Pointer(**raw["pointer"]) if raw["pointer"] is not None else None
    return Entry(float(raw["read_at"]), pointer)
