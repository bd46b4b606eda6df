"""BatchWriteItem and GetItem over signed HTTP: accepted by the real DynamoDB Local, answers and failures
as botocore reports them, throttling and connection errors retried with backoff up to the attempt cap."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from recommender.store.signed_http import TARGET_PREFIX, SignedHttpClient
from recommender.store.dynamo import DynamoStore
from recommender.store.items import StoredItem
from recommender.store.retry import Backoff
from tests.live import free_port

FAST = Backoff(base_seconds=0.001, cap_seconds=0.002, sleeper=lambda seconds: None)  # retries without waiting


def puts(items: list[StoredItem]) -> list[dict]:
    return [{"PutRequest": {"Item": i.to_dynamo()}} for i in items]


@pytest.mark.dynamodb
def test_items_sent_over_http_are_stored_and_read_back(local_settings):
    store = DynamoStore.for_generator(local_settings)
    table = store.create_run_table("20260101T000000Z-http0000")
    items = [StoredItem.of(u, "m", [(u + 1, 0.25), (u + 2, 0.125)], run_id="x") for u in range(1, 26)]
    client = SignedHttpClient(local_settings.dynamodb_endpoint_url, local_settings.aws_region)
    assert client.batch_write_item(RequestItems={table: puts(items)}) == {"UnprocessedItems": {}}
    stored = store.client.get_item(TableName=table, Key={"user_handle": {"N": "7"}, "model_handle": {"S": "m"}})["Item"]
    assert StoredItem.from_dynamo(stored) == items[6]


@pytest.mark.dynamodb
def test_get_item_answers_as_the_boto3_client_does(local_settings):
    store = DynamoStore.for_generator(local_settings)
    table = store.create_run_table("20260101T000000Z-http0001")
    item = StoredItem.of(7, "m", [(8, 0.25), (9, 0.125)], run_id="x")
    store.client.put_item(TableName=table, Item=item.to_dynamo())
    client = SignedHttpClient(local_settings.dynamodb_endpoint_url, local_settings.aws_region)
    for key, consistent in (({"user_handle": {"N": "7"}, "model_handle": {"S": "m"}}, True),
                            ({"user_handle": {"N": "6"}, "model_handle": {"S": "m"}}, False)):
        ours = client.get_item(TableName=table, Key=key, ConsistentRead=consistent)
        theirs = store.client.get_item(TableName=table, Key=key, ConsistentRead=consistent)
        assert ours.get("Item") == theirs.get("Item")
    assert StoredItem.from_dynamo(client.get_item(TableName=table, Key=key | {"user_handle": {"N": "7"}})["Item"]) == item
    page = client.scan(TableName=table, ProjectionExpression="user_handle, similar_users")
    assert page["Items"] == [{"user_handle": {"N": "7"}, "similar_users": {"S": "[8,9]"}}]
    with pytest.raises(ClientError) as failure:
        client.get_item(TableName="no_such_table_here", Key=key)
    assert failure.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert failure.value.operation_name == "GetItem"


@pytest.mark.dynamodb
def test_an_unknown_table_is_a_client_error_at_once(local_settings):
    client = SignedHttpClient(local_settings.dynamodb_endpoint_url, local_settings.aws_region, backoff=FAST)
    with pytest.raises(ClientError) as failure:
        client.batch_write_item(RequestItems={"no_such_table_here": puts([StoredItem.of(1, "m", [(2, 0.5)])])})
    assert failure.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_closed_port_is_a_connection_error_after_the_attempts():
    client = SignedHttpClient(f"http://127.0.0.1:{free_port()}", "us-east-1", max_attempts=3, backoff=FAST)
    with pytest.raises(EndpointConnectionError):
        client.batch_write_item(RequestItems={"t": puts([StoredItem.of(1, "m", [(2, 0.5)])])})


class Throttling(BaseHTTPRequestHandler):
    """DynamoDB throttling the first ``throttles`` requests (what DynamoDB Local never does)."""

    throttles = 0
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"target": self.headers["X-Amz-Target"], "signed": "Signature=" in self.headers["Authorization"],
                                "items": len(body["RequestItems"]["t"])})
        throttled = len(type(self).seen) <= type(self).throttles
        payload = {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow down"} \
            if throttled else {"UnprocessedItems": {}}
        data = json.dumps(payload).encode()
        self.send_response(400 if throttled else 200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("attempts, succeeds", [(3, True), (2, False)])
def test_throttling_is_retried_up_to_the_attempt_cap(attempts, succeeds):
    Throttling.throttles, Throttling.seen = 2, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = SignedHttpClient(f"http://127.0.0.1:{server.server_port}", "us-east-1", max_attempts=attempts,
                                      backoff=FAST)
        request = {"t": puts([StoredItem.of(u, "m", [(2, 0.5)]) for u in range(1, 4)])}
        if succeeds:
            assert client.batch_write_item(RequestItems=request) == {"UnprocessedItems": {}}
        else:
            with pytest.raises(ClientError, match="ThrottlingException"):
                client.batch_write_item(RequestItems=request)
    finally:
        server.shutdown()
    assert Throttling.seen == [{"target": TARGET_PREFIX + "BatchWriteItem", "signed": True, "items": 3}] * attempts
