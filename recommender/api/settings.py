"""How the app's code reads the service's settings: the one :class:`~recommender.config.ApiSettings`
``create_app`` was given, found as ``get_store()`` finds the store (Flask's own keys, such as
``MAX_CONTENT_LENGTH``, are derived from it into ``app.config`` for Flask to read)."""

from __future__ import annotations

from flask import Flask, current_app

from recommender.config import ApiSettings

_EXTENSION = "similar_users_settings"


def init_settings(app: Flask, settings: ApiSettings) -> None:
    app.extensions[_EXTENSION] = settings


def get_settings(app: Flask | None = None) -> ApiSettings:
    return (app or current_app).extensions[_EXTENSION]
