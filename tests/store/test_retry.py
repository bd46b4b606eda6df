"""The one retry policy: botocore retries failed requests (GENERATOR_DB_MAX_ATTEMPTS in all), the batch
writer re-sends unprocessed items with capped, jittered exponential backoff."""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from recommender.config import GeneratorSettings
from recommender.store.codec import to_dynamo
from recommender.store.dynamo import DynamoStore, StoreUnavailable

from recommender.store.items import StoredItem
from recommender.store.writer import BatchWriter
from recommender.store.retry import Backoff, RetriesExhausted


def test_full_jitter_grows_exponentially_and_is_capped():
    backoff = Backoff(base_seconds=0.1, cap_seconds=1.0)
    rng = random.Random(0)
    for attempt, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (10, 1.0)]:
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert 0 <= min(delays) and max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8  # jitter spans the whole range


class FlakyClient:
    """Stands in for DynamoDB throttling: hands back the last item unprocessed ``failures`` times."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls: list[int] = []

    def batch_write_item(self, RequestItems):
        (table, requests), = RequestItems.items()
        self.calls.append(len(requests))
        if self.failures > 0:
            self.failures -= 1
            return {"UnprocessedItems": {table: requests[-1:]}}
        return {"UnprocessedItems": {}}


def writer_with(client, max_retries=3, slept: list[float] | None = None) -> BatchWriter:
    """A writer whose backoff records its delays instead of sleeping them."""
    record = (slept if slept is not None else []).append
    return BatchWriter(client, backoff=Backoff(base_seconds=0.1, cap_seconds=0.3, max_retries=max_retries, sleeper=record))


ITEMS = [StoredItem.of(u, "m", [(1, 0.5)]) for u in range(1, 11)]


def test_unprocessed_items_are_resent_until_written():
    client, slept = FlakyClient(failures=2), []
    assert writer_with(client, slept=slept)._write_batch("t-run", [to_dynamo(i) for i in ITEMS]) == 10
    assert client.calls == [10, 1, 1]
    assert len(slept) == 2 and 0 <= slept[0] <= 0.2 and 0 <= slept[1] <= 0.3  # one backoff per retry, capped


def test_the_cap_fails_loudly():
    client, slept = FlakyClient(failures=100), []
    with pytest.raises(RetriesExhausted, match="1 items still unprocessed by DynamoDB after 3 retries"):
        writer_with(client, max_retries=3, slept=slept)._write_batch("t-run", [to_dynamo(i) for i in ITEMS])
    assert len(client.calls) == 4 and len(slept) == 3


class Throttling(BaseHTTPRequestHandler):
    """DynamoDB throttling the first ``throttles`` requests (what DynamoDB Local never does)."""

    throttles = 0
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"target": self.headers["X-Amz-Target"], "items": len(body["RequestItems"]["t"])})
        throttled = len(type(self).seen) <= type(self).throttles
        payload = {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow down"} \
            if throttled else {"UnprocessedItems": {}}
        data = json.dumps(payload).encode()
        self.send_response(400 if throttled else 200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("attempts, succeeds", [(3, True), (2, False), (1, False)])
def test_generator_db_max_attempts_is_the_number_of_requests_sent(attempts, succeeds):
    """Two throttled answers: three attempts get through, two or one do not, and exactly that many
    requests reach the server (botocore's retries; the batch writer adds none for a failed request)."""
    Throttling.throttles, Throttling.seen = 2, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = GeneratorSettings(dynamodb_endpoint_url=f"http://127.0.0.1:{server.server_port}",
                                     generator_db_max_attempts=attempts)
        writer = BatchWriter(DynamoStore.for_generator(settings).client, threads=1)
        if succeeds:
            assert writer.write("t", ITEMS[:3]) == 3
        else:
            with pytest.raises(StoreUnavailable, match="ThrottlingException"):
                writer.write("t", ITEMS[:3])
    finally:
        server.shutdown()
        server.server_close()
    assert Throttling.seen == [{"target": "DynamoDB_20120810.BatchWriteItem", "items": 3}] * attempts
