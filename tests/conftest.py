"""Shared fixtures: the real DynamoDB Local, small synthetic datasets, unique tables."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The two real published tables ship in the repository (data/README.md): a clone needs nothing beside it.
REAL_DATA = ROOT / "data" / "pluralsight"
LOCAL_PORT = int(os.environ.get("DYNAMODB_LOCAL_PORT", "8000"))
LOCAL_ENDPOINT = f"http://127.0.0.1:{LOCAL_PORT}"

# Every answer the app gives in the tests is checked against its published schema (off in production).
os.environ["VALIDATE_RESPONSES"] = "true"
# Tests never talk to AWS: dummy credentials, one region (DynamoDB Local keys databases on them).
os.environ.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_REGION="us-east-1")
os.environ.pop("AWS_PROFILE", None)


# ``make test-fast`` sets TEST_LANE=fast: the lane that runs without DynamoDB Local (pure units, moto).
FAST_LANE = os.environ.get("TEST_LANE") == "fast"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A test that asks for DynamoDB Local (directly or through another fixture) is marked ``dynamodb``.

    So ``-m "not dynamodb"`` leaves out every such test, whether or not its module remembered the mark.
    """
    for item in items:
        if "dynamodb_endpoint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.dynamodb)


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> str:
    """The real DynamoDB Local; started here (idempotently) when make test did not already."""
    if FAST_LANE:
        pytest.fail("this test needs DynamoDB Local but runs in the fast lane (TEST_LANE=fast): mark it dynamodb")
    result = subprocess.run(
        [str(ROOT / "scripts" / "dynamodb_local.sh"), "start"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**os.environ, "DYNAMODB_LOCAL_PORT": str(LOCAL_PORT)},
    )
    if result.returncode != 0:
        pytest.fail(f"DynamoDB Local could not be started: {result.stderr or result.stdout}")
    return LOCAL_ENDPOINT


@pytest.fixture
def table_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


def local_settings_class():
    """Tests hand one settings object to both sides (generator and API); production keeps them apart."""
    from recommender.config import ApiSettings, GeneratorSettings

    class LocalSettings(GeneratorSettings, ApiSettings):
        pass

    return LocalSettings


@pytest.fixture
def local_settings(dynamodb_endpoint: str, table_name: str):
    return local_settings_class()(dynamodb_endpoint_url=dynamodb_endpoint, dynamodb_table=table_name)


def publish(store, run_id: str, items, **options):
    """Publish ready items (any models) as one complete run, through the real publisher."""
    from recommender.store.publisher import RunPublisher

    # Stamped with the run that publishes them, as the generator's items are.
    items = [dataclasses.replace(i, run_id=run_id) for i in items]
    models = tuple(dict.fromkeys(i.model_handle for i in items))
    publisher = RunPublisher(store, **options)
    publisher.begin(run_id, models)
    try:
        counts = {model: publisher.write(model, (i for i in items if i.model_handle == model)) for model in models}
        publisher.commit(counts)
    except BaseException:
        publisher.abort()
        raise
    publisher.finish()
    return publisher


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """600 synthetic users in 6 communities: big enough for signal, small enough for seconds."""
    from recommender_tools.datagen import generate

    out = tmp_path_factory.mktemp("data_small")
    generate(out, users=600, seed=11, communities=6)
    return out


@pytest.fixture(scope="session")
def small_tables(small_dataset: Path):
    from recommender.data.loader import load_tables

    return load_tables(small_dataset)


@pytest.fixture
def seed_items(local_settings):
    """Publish items so that the API (built on ``local_settings``) answers from them.

    API tests seed through this one function, so they keep working whatever the store's
    layout (tables, run pointers) is.
    """
    from recommender.store.dynamo import DynamoStore

    def seed(items: list, run_id: str = "20260101T000000Z-seed0000") -> None:
        publish(DynamoStore.for_generator(local_settings), run_id, items)

    return seed


def published(settings) -> dict[tuple[int, str], dict]:
    """Every item the pointers serve, read back from DynamoDB Local, as its dry-run record without its run's stamp."""
    import json

    from recommender.store.codec import from_dynamo, json_line
    from recommender.store.dynamo import DynamoStore

    store = DynamoStore.for_generator(settings)
    items = {}
    for pointer in store.pointers():
        for page in store.client.get_paginator("scan").paginate(TableName=pointer.table, ConsistentRead=True):
            for attributes in page["Items"]:
                item = from_dynamo(attributes)
                if item.model_handle == pointer.model_handle:
                    assert item.run_id == pointer.run_id
                    items[(item.user_handle, item.model_handle)] = unstamped(json.loads(json_line(item)))
    return items


def dry_run_records(path: Path) -> dict[tuple[int, str], dict]:
    """A dry run's lines, keyed like :func:`published`, without their run's stamp."""
    import json

    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {(r["user_handle"], r["model_handle"]): unstamped(r) for r in records}


def unstamped(record: dict) -> dict:
    record.pop("run_id"), record.pop("generated_at")
    return record
