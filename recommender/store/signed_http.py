"""DynamoDB's two hot calls straight over keep-alive HTTP: the generator's ``BatchWriteItem`` and the
API's ``GetItem``, without botocore's per-request layers.

Why: against DynamoDB Local the client's CPU is a large part of the write path, and for a 25-item
request botocore spends most of it outside the network: serialising every attribute value through the
service model, resolving the endpoint rules, emitting a dozen events, re-parsing headers.  Our
attribute values are already DynamoDB's wire format, so the request body is one C-encoded JSON
document; sending it this way costs the client far less CPU per item (``bench/write.json``).  A
``GetItem`` is most of the API's cache-miss cost, and botocore's layers are a large part of one
against DynamoDB Local (``make bench`` times both on the same rows: raw ``client.get_item``
against ``DynamoStore.get``; docs/benchmarks.md).  The connections are the standard library's
(:mod:`recommender.store.http_connections`: urllib3's pool cost a ``GetItem`` more CPU).  Only these two calls take the short cut in the service (and ``Scan``, for a benchmark's read-back): every other call (tables, the lock, the run records, the pointer
flip, the health check) goes through the boto3 client.

Still the library where it matters: botocore signs each request (``SigV4Auth``) with the
credentials of boto3's own chain (environment, profile, role; refreshed when they expire), and
failures are botocore's exceptions (``ClientError`` with DynamoDB's error code,
``EndpointConnectionError``), so callers handle them as before.  Retries follow botocore's
standard mode: throttling, 5xx answers and connection errors are retried with capped, jittered
exponential backoff, ``max_attempts`` attempts in all; any other error fails at once.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from recommender.store.http_connections import HttpConnections
from recommender.store.retry import Backoff

TARGET_PREFIX = "DynamoDB_20120810."
#: DynamoDB's throttling codes (botocore's standard retry mode retries these, and every 5xx).
THROTTLING = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"})

_encode = json.JSONEncoder(separators=(",", ":")).encode


class SignedHttpClient:
    """Quacks like ``boto3.client("dynamodb")`` for ``batch_write_item`` and ``get_item``; thread- and gevent-safe."""

    def __init__(self, endpoint_url: str, region: str, *, max_attempts: int = 8, connections: int = 10,
                 connect_timeout: float = 5.0, read_timeout: float = 30.0, backoff: Backoff | None = None):
        self.endpoint_url = endpoint_url
        self.region = region
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff or Backoff()
        self._credentials = boto3.session.Session().get_credentials()
        self._path = urlsplit(endpoint_url).path or "/"
        # A burst beyond ``connections`` opens extra sockets rather than queueing (as botocore).
        self._connections = HttpConnections(endpoint_url, keep=connections, connect_timeout=connect_timeout,
                                            read_timeout=read_timeout)

    def batch_write_item(self, RequestItems: dict[str, list[dict]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        return self._post("BatchWriteItem", {"RequestItems": RequestItems})

    def get_item(self, TableName: str, Key: dict[str, dict], ConsistentRead: bool = False) -> dict[str, Any]:  # noqa: N803
        request: dict[str, Any] = {"TableName": TableName, "Key": Key}
        if ConsistentRead:
            request["ConsistentRead"] = True
        return self._post("GetItem", request)

    def scan(self, **request: Any) -> dict[str, Any]:
        """One ``Scan`` page (``TableName``, ``ProjectionExpression``, ``ExclusiveStartKey``…): for tools
        that read a whole run table back, e.g. ``bench/bench_scale.py`` comparing two engines."""
        return self._post("Scan", request)

    def _post(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        body = _encode(request).encode()
        for attempt in range(1, self.max_attempts + 1):
            try:
                status, data = self._connections.post(self._path, body, self._signed_headers(operation, body))
            except (OSError, http.client.HTTPException) as exc:  # refused, timed out, reset, not HTTP
                error: Exception = EndpointConnectionError(endpoint_url=self.endpoint_url, error=exc)
            else:
                if status == 200:
                    return json.loads(data)
                error = _client_error(status, data, operation)
                if status < 500 and error.response["Error"]["Code"] not in THROTTLING:
                    raise error
            if attempt == self.max_attempts:
                raise error
            time.sleep(self.backoff.delay(attempt))
        raise AssertionError("unreachable")

    def _signed_headers(self, operation: str, body: bytes) -> dict[str, str]:
        if self._credentials is None:
            raise NoCredentialsError()
        request = AWSRequest("POST", self.endpoint_url, data=body,
                             headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": TARGET_PREFIX + operation})
        SigV4Auth(self._credentials.get_frozen_credentials(), "dynamodb", self.region).add_auth(request)
        return dict(request.headers.items())

    def close(self) -> None:
        self._connections.close()


def _client_error(status: int, data: bytes, operation: str) -> ClientError:
    """DynamoDB's JSON error (``{"__type": "…#Code", "message": "…"}``) as botocore reports it."""
    try:
        payload = json.loads(data or b"{}")
    except ValueError:
        payload = {}
    code = str(payload.get("__type", f"HTTP{status}")).rsplit("#", 1)[-1]
    message = str(payload.get("message") or payload.get("Message") or data[:200].decode("utf-8", "replace"))
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       operation)
