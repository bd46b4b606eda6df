"""A bounded in-process cache of stored items, in front of the DynamoDB read path.

A run's table never changes once its pointer is published, so the item for (run id, model,
user) is the same for as long as that run serves: the cache can never be stale.  When the
generator publishes a new run the pointer names a new run id, the old keys are simply never
asked for again and age out of the LRU.  "No row for this user" is cached too (it is just as
immutable), so unknown users and experiment fallbacks cost no read either.

The pointer itself still comes from :meth:`DynamoStore.pointer` (its own short cache and
rules), which this wrapper does not change.  A run's table can still vanish under its pointer
(dropped by hand, a restore without it): so a run's items are served from memory only while the
service's :class:`~recommender.api.run_check.RunCheck` trusts that run (its table answered within
``RUN_CHECK_SECONDS``, and neither a request nor ``/health`` has found it missing since); the next
request after that reads through, and a missing table then answers 503 ``run_unavailable`` like a
miss would.  Only that one request reads through: the others keep being served from memory while
its read is under way, and all read through again if it fails.  Every request that found the check
due used to read at once (one per request in flight, every ``RUN_CHECK_SECONDS``, for every run): a
burst beyond the connection pool, new connections to the database, and a stall of the whole worker.
Size: ``ITEM_CACHE_SIZE`` entries per process (0 turns the cache off).  The eviction order is
cachetools' ``LRUCache``; it is not thread-safe, so one lock guards it (gevent and thread workers).

Why items are kept as plain tuples of numbers and strings, rebuilt on a hit: the garbage
collector stops tracking such a tuple after its first collection, but tracks every object and
every tuple subclass (``StoredItem``, its ``Neighbour`` named tuples) for as long as it lives.  A full
cache of objects made each full collection walk over a million of them, a pause that held every
request of the worker (``/health`` included) under load.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from cachetools import LRUCache

from recommender.api.run_check import RunCheck
from recommender.store.dynamo import RunUnavailable
from recommender.store.items import Neighbour, Reason, StoredItem

_NO_ROW = ()  # "no row for this user": a plain tuple too


def _frozen(item: StoredItem) -> tuple:
    """``item`` as one flat tuple of numbers and strings, which the garbage collector stops tracking
    at the first collection that sees it (a nested tuple needs one collection per level); decoded
    reasons, which the API's reads never have (they stay ``pending_reasons``), nest."""
    reasons = (tuple(tuple(tuple(r) for r in n.reasons) for n in item.neighbours)
               if any(n.reasons for n in item.neighbours) else None)
    return (item.user_handle, item.model_handle, item.run_id, item.generated_at, item.pending_reasons, reasons,
            *(n.user_handle for n in item.neighbours), *(n.score for n in item.neighbours))


def _thawed(entry: tuple) -> StoredItem:
    user_handle, model_handle, run_id, generated_at, pending, reasons = entry[:6]
    count = (len(entry) - 6) // 2
    users, scores = entry[6:6 + count], entry[6 + count:]
    why = reasons or ((),) * count
    neighbours = tuple(Neighbour(u, s, tuple(Reason(*r) for r in w)) for u, s, w in zip(users, scores, why))
    return StoredItem(user_handle, model_handle, neighbours, run_id, generated_at, pending)


@cache
def lookups():
    """The hit/miss counter, created once the API's metrics module has set up multiprocess mode
    (imported here, not at the top: the API package imports this module first)."""
    from recommender.api.http import metrics  # noqa: F401
    from prometheus_client import Counter

    return Counter("similar_users_item_cache_lookups", "Item cache lookups by result (hit or miss)", ["result"])


class CachedItems:
    """Wraps a store that has ``pointer(model)`` and ``get(user, model, pointer=)``; delegates everything else."""

    def __init__(self, inner: Any, size: int, run_check: RunCheck):
        self.inner = inner
        self.size = size
        self.run_check = run_check
        self._items: LRUCache[tuple[str, str, int], Any] = LRUCache(maxsize=size)
        self._lock = threading.Lock()
        self._hits, self._misses = lookups().labels("hit"), lookups().labels("miss")

    def get(self, user_handle: int, model_handle: str) -> StoredItem | None:
        pointer = self.inner.pointer(model_handle)
        if pointer is None:  # nothing published: whatever the store does about it
            return self.inner.get(user_handle, model_handle)
        key = (pointer.run_id, model_handle, int(user_handle))
        claim = self.run_check.trusted(pointer.run_id)  # None: trusted; else this request checks the table
        if claim is None:
            with self._lock:
                found = self._items.get(key)  # a hit becomes the most recently used
            if found is not None:
                self._hits.inc()
                return _thawed(found) if found else None
        self._misses.inc()
        try:
            item = self.inner.get(user_handle, model_handle, pointer=pointer)  # RunUnavailable: nothing cached
        except RunUnavailable:
            self.run_check.unreadable(pointer.run_id)  # no answer from memory for it either, from now on
            raise
        except BaseException:
            if claim is not None:  # the check failed: every next request reads through until one succeeds
                self.run_check.unreadable(pointer.run_id, claim)
            raise
        # Keep it only when it is that run's answer: the store re-reads the pointer if the run's
        # table vanished meanwhile.  An item names its run; "no row" needs the pointer again.
        if item is not None and item.run_id:
            same_run = item.run_id == pointer.run_id
        else:
            after = self.inner.pointer(model_handle)
            same_run = after is not None and after.run_id == pointer.run_id
        if same_run:
            self.run_check.readable(pointer.run_id)  # its table answered just now
            with self._lock:
                self._items[key] = _NO_ROW if item is None else _frozen(item)  # evicts the least recently used
        return item

    def __len__(self) -> int:
        return len(self._items)

    def pointers(self):
        return self.inner.pointers()

    def ping(self) -> bool:
        return self.inner.ping()

    def unavailable_runs(self):
        return self.inner.unavailable_runs()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def with_item_cache(store: Any, size: int, run_check: RunCheck) -> Any:
    """``store`` behind a cache of ``size`` items, or as it is when the size is 0."""
    return CachedItems(store, size, run_check) if size > 0 else store
