"""Input tables: their schema, loading and validation.

The loader (pandas) is imported on first use only: the API imports
:data:`recommender.data.schema.MAX_USER_HANDLE` and the generator's pre-flight checks run
before pandas is paid for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DataValidationError", "Tables", "load_tables"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from recommender.data import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
