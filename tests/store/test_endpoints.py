"""The standard AWS variables reach the clients; the project's own endpoint settings win when set.

botocore reads ``AWS_ENDPOINT_URL_DYNAMODB`` / ``AWS_ENDPOINT_URL_S3`` itself when a client is
opened without an ``endpoint_url``: these tests prove the settings never pass an empty one over
them, against the real DynamoDB Local and a real (moto) S3 server.
"""

from __future__ import annotations

import socket

import pytest
from moto.server import ThreadedMotoServer

from recommender.config import ApiSettings, GeneratorSettings, load_settings
from recommender.data.sources import FILES, local_folder
from recommender.store.dynamo import DynamoStore
from recommender.store.items import StoredItem
from tests.conftest import publish

TFIDF = "tfidf_user_interest"


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def aws_env(monkeypatch, table_name):
    for name in ("DYNAMODB_ENDPOINT_URL", "S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB",
                 "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DYNAMODB_TABLE", table_name)
    return monkeypatch


def round_trip(run_id: str) -> tuple[DynamoStore, StoredItem]:
    item = StoredItem.of(3, TFIDF, [(1, 0.5)], run_id=run_id)
    publish(DynamoStore.for_generator(load_settings(GeneratorSettings, env_file=None)), run_id, [item])
    return DynamoStore.for_api(load_settings(ApiSettings, env_file=None)), item


def test_aws_endpoint_url_dynamodb_is_used_when_the_project_sets_none(aws_env, dynamodb_endpoint):
    aws_env.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    aws_env.setenv("DYNAMODB_ENDPOINT_URL", "")  # empty: not set
    reader, item = round_trip("20260101T000000Z-endpoint")
    assert reader.client.meta.endpoint_url == dynamodb_endpoint
    assert reader.get(3, TFIDF) == item


def test_dynamodb_endpoint_url_wins_over_the_aws_variable(aws_env, dynamodb_endpoint):
    aws_env.setenv("AWS_ENDPOINT_URL_DYNAMODB", closed_port())  # nothing listens: using it would fail
    aws_env.setenv("DYNAMODB_ENDPOINT_URL", dynamodb_endpoint)
    reader, item = round_trip("20260101T000001Z-endpoint")
    assert reader.client.meta.endpoint_url == dynamodb_endpoint
    assert reader.get(3, TFIDF) == item


def test_without_any_endpoint_the_region_of_aws_region_is_aws(aws_env):
    aws_env.setenv("AWS_REGION", "eu-west-1")
    for store in (DynamoStore.for_api(load_settings(ApiSettings, env_file=None)),
                  DynamoStore.for_generator(load_settings(GeneratorSettings, env_file=None))):
        assert store.client.meta.region_name == "eu-west-1"
        assert store.client.meta.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"


@pytest.fixture
def s3_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def put_table(endpoint: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="exports")
    client.put_object(Bucket="exports", Key=f"day/{FILES['user_interests']}", Body=b"user_handle,interest_tag\n1,python\n")


@pytest.mark.parametrize("project_setting", [False, True])
def test_s3_endpoint_from_aws_endpoint_url_s3_or_s3_endpoint_url(aws_env, s3_server, project_setting):
    put_table(s3_server)
    if project_setting:  # S3_ENDPOINT_URL wins over a variable that points nowhere
        aws_env.setenv("AWS_ENDPOINT_URL_S3", closed_port())
        aws_env.setenv("S3_ENDPOINT_URL", s3_server)
    else:
        aws_env.setenv("AWS_ENDPOINT_URL_S3", s3_server)
        aws_env.setenv("S3_ENDPOINT_URL", "")
    settings = load_settings(GeneratorSettings, env_file=None)
    with local_folder("s3://exports/day", ("user_interests",), settings.s3_endpoint_url) as folder:
        assert (folder / FILES["user_interests"]).read_text() == "user_handle,interest_tag\n1,python\n"
