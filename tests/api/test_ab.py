"""A/B experiments through the real app and the real DynamoDB Local: assignment in answers,
fallback, stopping by editing the file, exposures and feedback (validated, idempotent), and a
real gunicorn that refuses a broken experiments file and reloads it on SIGHUP."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from prometheus_client import REGISTRY

from recommender.api import create_app
from recommender.experiments.assignment import assign
from recommender.experiments.definitions import load
from recommender.experiments.exposures import table_names
from recommender.store.items import StoredItem
from tests.api.conftest import MODELS, NEIGHBOURS, seed_for
from tests.conftest import ROOT
from tests.experiments.files import LEVEL, VIEWS, experiment_toml
import requests

from tests.live import GUNICORN, free_port, gunicorn_server

pytestmark = [pytest.mark.dynamodb]

ARMS = (("views", VIEWS, 1), ("level", LEVEL, 1))


def experiment_file(status: str = "running", arms=ARMS) -> str:
    return experiment_toml("exp-1", salt="salt-1", status=status, start="2020-01-01T00:00:00Z",
                           end="2100-01-01T00:00:00Z", arms=arms)


USERS = (999, 1, 2, 3, 4, 5, 6, 7)
ONLY_DEFAULT = 77  # has a row for the default model only


@pytest.fixture
def ab_app(local_settings, seed_items, tmp_path):
    """An app on DynamoDB Local with a running experiment; ``app.experiments_path`` is its file."""
    items = seed_for(USERS) + [StoredItem.of(ONLY_DEFAULT, MODELS[0], [(11, 0.9), (12, 0.8)])]
    seed_items(items)
    path = tmp_path / "experiments.toml"
    path.write_text(experiment_file())
    settings = local_settings.model_copy(update={"experiments_file": str(path), "experiments_reload_seconds": 0.1})
    app = create_app(settings)
    app.experiments_path = path
    app.settings = settings
    return app


def ask(client, user, **extra):
    response = client.post("/similar-users/", json={"user_handle": user, **extra})
    body = response.get_json()
    return response.status_code, body[0] if isinstance(body, list) else body, response.headers.get("X-Request-ID")


def counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_users_get_their_arm_and_explicit_model_bypasses(ab_app):
    experiment = load(ab_app.experiments_path).experiment[0]
    client = ab_app.test_client()
    seen = set()
    for user in USERS:
        status, body, request_id = ask(client, user)
        arm = assign(experiment, user)
        assert status == 200
        assert (body["experiment"], body["variant"], body["model_handle"]) == ("exp-1", arm.name, arm.model)
        assert body["request_id"] == request_id
        seen.add(arm.name)
        again = ask(client, user)[1]
        assert again["variant"] == body["variant"]  # stable for the user
        status, direct, _ = ask(client, user, model_handle=MODELS[0])
        assert direct["model_handle"] == MODELS[0] and "experiment" not in direct and "variant" not in direct
    assert seen == {"views", "level"}  # both arms occur among these users


def test_fallback_to_the_default_model_when_the_arm_has_no_row(ab_app):
    experiment = load(ab_app.experiments_path).experiment[0]
    arm = assign(experiment, ONLY_DEFAULT).name
    before = counter("similar_users_ab_fallbacks_total", experiment="exp-1", arm=arm)
    status, body, _ = ask(ab_app.test_client(), ONLY_DEFAULT)
    assert status == 200
    assert (body["variant"], body["model_handle"], body["similar_users"]) == ("fallback", MODELS[0], [11, 12])
    assert counter("similar_users_ab_fallbacks_total", experiment="exp-1", arm=arm) == before + 1
    # A user nobody has a row for is still a 404.
    assert ask(ab_app.test_client(), 424242)[0] == 404


@pytest.mark.parametrize("status", ["stopped", "paused"])
def test_stopping_the_experiment_in_the_file_sends_everyone_to_the_default(ab_app, status):
    client = ab_app.test_client()
    assert ask(client, 999)[1]["experiment"] == "exp-1"
    ab_app.experiments_path.write_text(experiment_file(status))
    deadline = time.monotonic() + 10
    body = ask(client, 999)[1]
    while "experiment" in body and time.monotonic() < deadline:  # the reload check runs every 0.1 s
        time.sleep(0.05)
        body = ask(client, 999)[1]
    assert "experiment" not in body and body["model_handle"] == MODELS[0]
    # A broken edit while running is ignored: the last good definitions stay.  Waited for by the
    # reload's own error count, not by a sleep: the answers below come after the broken file was read.
    live = ab_app.extensions["similar_users_experiments"]
    errors = live.reload_errors
    ab_app.experiments_path.write_text("this is [not toml")
    deadline = time.monotonic() + 10
    while live.reload_errors == errors and time.monotonic() < deadline:
        body = ask(client, 999)[1]
        assert "experiment" not in body
        time.sleep(0.05)
    assert live.reload_errors == errors + 1
    assert "experiment" not in ask(client, 999)[1]
    ab_app.experiments_path.write_text(experiment_file())
    deadline = time.monotonic() + 10
    while "experiment" not in ask(client, 999)[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ask(client, 999)[1]["experiment"] == "exp-1"


def feedback(client, **body):
    response = client.post("/feedback", json=body)
    return response.status_code, response.get_json()


def stored_events(app) -> list[dict]:
    client = app.extensions["similar_users_exposure_log"].store.client
    return client.scan(TableName=table_names(app.settings.dynamodb_table)[1], ConsistentRead=True)["Items"]


def test_feedback_is_validated_stored_once_and_found_from_another_process(ab_app):
    client = ab_app.test_client()
    _, body, request_id = ask(client, 999)
    shown = body["similar_users"][0]
    good = {"request_id": request_id, "user_handle": 999, "similar_user_handle": shown, "event": "click"}
    labels = {"experiment": "exp-1", "variant": body["variant"], "event": "click"}
    before = counter("similar_users_ab_events_total", **labels)

    assert feedback(client, **good)[0] == 202
    assert feedback(client, **good)[0] == 202  # the same event again: accepted, stored once
    log = ab_app.extensions["similar_users_exposure_log"]
    assert log.flush()
    events = stored_events(ab_app)
    assert len(events) == 1 and events[0]["event_key"]["S"] == f"{shown}#click"
    assert events[0]["variant"]["S"] == body["variant"] and events[0]["experiment"]["S"] == "exp-1"
    assert counter("similar_users_ab_events_total", **labels) == before + 1

    # Another worker (another app, empty memory) finds the exposure in DynamoDB.
    other = create_app(ab_app.settings).test_client()
    status, answer = feedback(other, **{**good, "event": "follow"})
    assert status == 202, answer
    assert feedback(other, **{**good, "event": "follow"})[0] == 202
    assert log.flush() and other.application.extensions["similar_users_exposure_log"].flush()
    assert sorted(e["event_key"]["S"] for e in stored_events(ab_app)) == [f"{shown}#click", f"{shown}#follow"]

    not_shown = next(u for u in range(2, 10**6) if u not in NEIGHBOURS)
    for bad, fragment in [
        ({**good, "similar_user_handle": not_shown}, f"similar_user_handle {not_shown} was not in the answer"),
        ({**good, "user_handle": 1}, "user_handle 1 was not the user of request"),
        ({**good, "event": "like"}, "event:"),
        ({**good, "similar_user_handle": -3}, "similar_user_handle: must be a positive integer"),
        ({**good, "request_id": "has spaces"}, "request_id:"),
        ({k: v for k, v in good.items() if k != "event"}, "event: field required"),
    ]:
        status, error = feedback(client, **bad)
        assert status == 400 and fragment in error["message"], (bad, error)
        assert set(error) == {"error", "message"}
    status, error = feedback(client, **{**good, "request_id": "0123456789abcdef-unknown"})
    assert status == 404 and error["error"] == "unknown_request" and "no answer given inside an experiment" in error["message"]
    assert log.flush()
    assert len(stored_events(ab_app)) == 2  # nothing invalid was stored


def test_exposures_are_stored_with_what_was_shown(ab_app):
    client = ab_app.test_client()
    _, body, request_id = ask(client, 999, k=3)
    log = ab_app.extensions["similar_users_exposure_log"]
    assert log.flush()
    item = log.store.client.get_item(TableName=log.exposures_table, Key={"request_id": {"S": request_id}},
                                     ConsistentRead=True)["Item"]
    assert [int(v["N"]) for v in item["similar_users"]["L"]] == body["similar_users"] == NEIGHBOURS[:3]
    assert (item["experiment"]["S"], item["variant"]["S"], item["model_handle"]["S"], item["user_handle"]["N"]) == (
        "exp-1", body["variant"], body["model_handle"], "999")
    assert item["shown_at"]["S"].endswith("Z")


def test_feedback_needs_the_api_key(local_settings, seed_items, tmp_path):
    seed_items(seed_for((999,)))
    app = create_app(local_settings.model_copy(update={"api_keys": ("k-1",)}))
    body = {"request_id": "abc", "user_handle": 999, "similar_user_handle": 901, "event": "click"}
    assert app.test_client().post("/feedback", json=body).status_code == 401
    assert app.test_client().post("/feedback", json=body, headers={"X-API-Key": "k-1"}).status_code == 404


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (experiment_file(arms=(("views", VIEWS, 1), ("level", "no_such_model", 1))), "unknown model 'no_such_model'"),
        (experiment_file(arms=(("views", VIEWS, 1), ("level", LEVEL, 0))), "weight: Input should be greater than 0"),
        # Wrong types are refused, not read as 2.0 or 1.0, nor a salt made of a number.
        (experiment_file(arms=(("views", VIEWS, 1), ("level", LEVEL, '"2"'))), "arms[2].weight: Input should be a valid number"),
        (experiment_file(arms=(("views", VIEWS, 1), ("level", LEVEL, "true"))), "arms[2].weight: Input should be a valid number"),
        (experiment_file().replace('salt = "salt-1"', "salt = 2026"), "experiment[1].salt: Input should be a valid string"),
    ],
    ids=["unknown-model", "zero-weight", "quoted-weight", "boolean-weight", "number-salt"],
)
def test_gunicorn_refuses_to_start_on_a_broken_experiments_file(local_settings, tmp_path, text, expected):
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    env = {**{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
           "DYNAMODB_ENDPOINT_URL": local_settings.dynamodb_endpoint_url,
           "DYNAMODB_TABLE": local_settings.dynamodb_table, "EXPERIMENTS_FILE": str(path)}
    server = subprocess.run(
        [str(GUNICORN), "-c", "recommender/api/gunicorn_conf.py", "--workers", "2",
         "--bind", f"127.0.0.1:{free_port()}", "recommender.api:create_app()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert server.returncode == 2, server.stdout + server.stderr
    lines = [line for line in server.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: experiments file {path}: ") and expected in lines[0], server.stderr
    assert "Traceback" not in server.stderr and "Booting worker" not in server.stderr


def test_sighup_makes_every_gunicorn_worker_read_the_edited_file(local_settings, seed_items, tmp_path):
    """Stopping an experiment without a restart, the other way: edit the file, ``kill -HUP`` the master.

    The reload timer is set to an hour, so only the signal can explain the change."""
    seed_items(seed_for(USERS))
    path = tmp_path / "experiments.toml"
    path.write_text(experiment_file())

    def answers(base: str) -> list[dict]:
        return [requests.post(f"{base}/similar-users/", json={"user_handle": user}, timeout=60).json()[0]
                for user in USERS * 3]  # enough requests to reach both workers

    env = {"EXPERIMENTS_FILE": str(path), "EXPERIMENTS_RELOAD_SECONDS": "3600"}
    with gunicorn_server(local_settings, tmp_path / "gunicorn.log", env=env) as base:
        assert all(a["experiment"] == "exp-1" for a in answers(base))
        path.write_text(experiment_file("stopped"))
        assert all(a.get("experiment") == "exp-1" for a in answers(base))  # the timer has not fired
        os.kill(base.pid, signal.SIGHUP)
        deadline = time.monotonic() + 60  # new workers boot (seconds on a busy machine), old ones drain
        latest = answers(base)
        while any("experiment" in a for a in latest) and time.monotonic() < deadline:
            time.sleep(0.2)
            latest = answers(base)
        assert not any("experiment" in a for a in latest)
        assert {a["model_handle"] for a in latest} == {MODELS[0]}
        assert "Handling signal: hup" in (tmp_path / "gunicorn.log").read_text()


def test_a_client_request_id_cannot_overwrite_another_users_exposure(ab_app, seed_items):
    """A client (a retry, or on purpose) sends the same X-Request-ID for user 42, then for 43:
    the exposures are keyed by ids the server makes, so 42's stays and its feedback is accepted."""
    seed_items(seed_for((42, 43)), run_id="20260102T000000Z-seed0001")
    client = ab_app.test_client()
    chosen = "R-chosen-by-a-client"
    answers = {}
    for user in (42, 43):
        response = client.post("/similar-users/", json={"user_handle": user}, headers={"X-Request-ID": chosen})
        assert response.status_code == 200 and response.headers["X-Request-ID"] == chosen  # still the log's id
        answers[user] = response.get_json()[0]
    ids = {answers[42]["request_id"], answers[43]["request_id"], chosen}
    assert len(ids) == 3  # two server-made ids, neither the client's
    log = ab_app.extensions["similar_users_exposure_log"]
    assert log.flush()

    for user, answer in answers.items():  # each stored as shown, under its own id
        stored = log.store.client.get_item(TableName=log.exposures_table, Key={"request_id": {"S": answer["request_id"]}},
                                           ConsistentRead=True)["Item"]
        assert int(stored["user_handle"]["N"]) == user
    assert "Item" not in log.store.client.get_item(TableName=log.exposures_table, Key={"request_id": {"S": chosen}},
                                                   ConsistentRead=True)
    shown = answers[42]["similar_users"][0]
    status, body = feedback(client, request_id=answers[42]["request_id"], user_handle=42, similar_user_handle=shown,
                            event="click")
    assert status == 202, body
    status, body = feedback(client, request_id=chosen, user_handle=42, similar_user_handle=shown, event="click")
    assert status == 404 and body["error"] == "unknown_request"
    # Another process (no memory of these requests) reads the same from DynamoDB.
    other = create_app(ab_app.settings).extensions["similar_users_exposure_log"]
    assert other.find(answers[42]["request_id"]).user_handle == 42
