"""How a request finds the store, as the Flask tutorial's ``get_db()``: one accessor, one protocol.

The views depend on :class:`ReadStore` only, so the DynamoDB reader, the in-memory store of the
tests and any cache in front of either are interchangeable.
"""

from __future__ import annotations

from typing import Protocol

from flask import Flask, current_app

from recommender.store.control import Pointer
from recommender.store.items import StoredItem

_EXTENSION = "similar_users_store"


class ReadStore(Protocol):
    def get(self, user_handle: int, model_handle: str) -> StoredItem | None:
        """The item published for (user, model), or None when the model's run has no row for the user.

        Raises ``recommender.store.dynamo.NoPublishedRun`` when the model has no published run
        (the API's 503 ``no_published_run``, not a 404), ``RunUnavailable`` when that run's table
        is missing (503 ``run_unavailable``).
        """

    def pointers(self) -> list[Pointer]:
        """Every published model and the run serving it."""

    def ping(self) -> bool:
        """True when the database answers (the health check)."""

    def unavailable_runs(self) -> list[Pointer]:
        """The published runs whose table is missing (the health check); ``StoreUnavailable`` when unreachable."""


def init_store(app: Flask, store: ReadStore) -> None:
    app.extensions[_EXTENSION] = store


def get_store() -> ReadStore:
    return current_app.extensions[_EXTENSION]
