"""DynamoDB attribute values to and from plain Python, for everything but the run items' lists.

Every control row that reaches DynamoDB (pointers, run records, the lock) is built from a plain
``dict`` by :func:`to_attributes`, and every item read back goes through :func:`from_attributes`
(keys and expression values too).  A run item's attribute values are written by its codec
(:mod:`recommender.store.codec`: its lists and reasons are JSON texts, the rest strings and one
number), which reads them back through :func:`from_attributes`.  The work is boto3's
:class:`~boto3.dynamodb.types.TypeSerializer` / :class:`~boto3.dynamodb.types.TypeDeserializer`
(what boto3's resource layer uses), with the two conversions they leave to the caller:

* floats go in as :class:`~decimal.Decimal` of their shortest text (``repr``): DynamoDB numbers
  are decimal and the serializer refuses binary floats rather than guess;
* numbers come back as ``int`` when integral, else ``float``: callers deal in handles, counts and
  timestamps, not in ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _decimals(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, (list, tuple)):
        return [_decimals(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _decimals(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_attributes(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A plain item (str, int, float, bool, None, lists, dicts) → DynamoDB attribute values."""
    return {name: _serializer.serialize(_decimals(v)) for name, v in item.items()}


def from_attributes(attributes: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """DynamoDB attribute values → a plain item; integral numbers as ``int``, the others as ``float``."""
    return {name: _plain(_deserializer.deserialize(v)) for name, v in attributes.items()}
