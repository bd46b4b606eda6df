"""Input tables: their schema, loading and validation."""

from recommender.data.loader import DataValidationError, Tables, load_tables

__all__ = ["DataValidationError", "Tables", "load_tables"]
