"""The explorer's pages through Flask's test client: headers, keys, errors, the evaluation file.

What a browser does with them (the script, the key, the DOM) is in ``test_explore_browser.py``.
"""

from __future__ import annotations

import json
import re

import pytest

from recommender.api import create_app
from recommender.api.explore_data import REPORT_SECONDS, ExperimentReports
from recommender.config import ApiSettings, SettingsError
from recommender.experiments.definitions import parse
from recommender.models.registry import MODEL_HANDLES
from recommender.store.dynamo import StoreUnavailable
from tests.api.conftest import NEIGHBOURS, MemoryStore, seed_for
from tests.conftest import ROOT

RESULTS = ROOT / "docs" / "evaluation" / "results.json"


class DownStore(MemoryStore):
    """The database unreachable, as the DynamoDB reader reports it."""

    def get(self, user_handle, model_handle):
        raise StoreUnavailable("connect timeout")

    def pointers(self):
        raise StoreUnavailable("connect timeout")


def test_the_page_is_server_rendered_under_a_strict_csp(memory_app):
    response = memory_app().test_client().get("/explore?user_handle=999")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["X-Content-Type-Options"] == "nosniff"
    page = response.text
    # Nothing inline for the CSP to block: scripts and styles are files of this origin.
    assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", page) == [] and " style=" not in page and "<style" not in page
    assert re.findall(r'(?:src|href)="(https?:)?//', page) == []
    for model in MODEL_HANDLES:
        assert f'data-model-handle="{model}"' in page
    assert page.count('class="neighbour agreed"') == len(MODEL_HANDLES) * len(NEIGHBOURS)  # all agree here


@pytest.mark.parametrize(("query", "status", "message"), [
    ("user_handle=5", 404, "User 5 is unknown: no published model has similar users for them."),
    ("user_handle=abc", 400, "Not a user handle: user_handle: must be a positive integer"),
    ("user_handle=-3", 400, "Not a user handle:"),
])
def test_bad_or_unknown_users_get_a_plain_message(memory_app, query, status, message):
    client = memory_app().test_client()
    for path in ("/explore", "/explore/panel"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == status and response.mimetype == "text/html"
        assert message in response.text and "Traceback" not in response.text


def test_a_database_outage_is_a_503_with_a_plain_message():
    client = create_app(ApiSettings(), store=DownStore()).test_client()
    for path in ("/explore?user_handle=999", "/explore/panel?user_handle=999"):
        response = client.get(path)
        assert response.status_code == 503
        assert "The similar-users database cannot be reached right now." in response.text
        assert "connect timeout" not in response.text and "Traceback" not in response.text


def test_with_keys_the_pages_hold_no_data_and_the_panels_need_the_key(memory_app):
    client = memory_app(api_keys=("k1",)).test_client()
    page = client.get("/explore?user_handle=999")
    assert page.status_code == 200 and 'data-needs-key="true"' in page.text
    assert f'data-user-handle="{NEIGHBOURS[0]}"' not in page.text
    assert 'data-source="/explore/panel?user_handle=999"' in page.text
    assert client.get("/explore/static/explorer.js").status_code == 200
    for path in ("/explore/panel?user_handle=999", "/explore/experiments/panel"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401
    panel = client.get("/explore/panel?user_handle=999", headers={"X-API-Key": "k1"})
    assert panel.status_code == 200 and f'data-user-handle="{NEIGHBOURS[0]}"' in panel.text
    assert "<html" not in panel.text  # a fragment for the page's panel


def test_the_evaluation_file_gives_each_model_its_offline_quality():
    results = json.loads(RESULTS.read_text())
    app = create_app(ApiSettings(evaluation_results_file=RESULTS), store=MemoryStore(seed_for()))
    page = app.test_client().get("/explore?user_handle=999").text
    for model in MODEL_HANDLES:
        column = page[page.index(f'data-model-handle="{model}"'):]
        column = column[:column.index("</dl>")]
        ndcg = results["tasks"]["courses"]["metrics"][model]["ndcg_at_10"]
        precision = results["planted"]["metrics"][model]["community_precision_at_10"]
        assert f"{ndcg:.4f}" in column and f"{precision:.3f}" in column
    without = create_app(ApiSettings(), store=MemoryStore(seed_for())).test_client().get("/explore?user_handle=999").text
    assert "NDCG@10" not in without


@pytest.mark.parametrize("content", [None, "{not json", '{"tasks": {}}', '{"tasks": {"courses": {"metrics": []}}}'])
def test_a_bad_evaluation_file_stops_the_start_with_one_line(tmp_path, content):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SettingsError) as caught:
        create_app(ApiSettings(evaluation_results_file=path), store=MemoryStore())
    message = str(caught.value)
    assert message.startswith("setting EVALUATION_RESULTS_FILE: evaluation results file ") and str(path) in message
    assert "\n" not in message


def results_with(section: str, model: str, figure: str, value) -> dict:
    """The repository's evaluation results with one figure the explorer reads set to ``value``."""
    results = json.loads(RESULTS.read_text())
    metrics = results["tasks"]["courses"]["metrics"] if section == "courses" else results["planted"]["metrics"]
    metrics[model][figure] = value
    return results


@pytest.mark.parametrize(("section", "figure"), [("courses", "ndcg_at_10"), ("planted", "community_precision_at_10")])
@pytest.mark.parametrize("value", ["0.41", True, 1.5, -0.01, float("nan"), [0.4], {"value": 0.4}],
                         ids=["string", "boolean", "above-1", "negative", "nan", "list", "object"])
def test_a_figure_of_the_wrong_type_or_range_stops_the_start_naming_it(tmp_path, section, figure, value):
    """The figures the explorer shows are validated at start: before, ``"0.41"`` passed the start and
    every ``/explore`` page answered 500 (formatting a string as a number)."""
    path = tmp_path / "results.json"
    model = MODEL_HANDLES[0]
    path.write_text(json.dumps(results_with(section, model, figure, value)))
    with pytest.raises(SettingsError) as caught:
        create_app(ApiSettings(evaluation_results_file=path), store=MemoryStore(seed_for()))
    message = str(caught.value)
    where = f"tasks.courses.metrics.{model}.{figure}" if section == "courses" else f"planted.metrics.{model}.{figure}"
    assert message.startswith(f"setting EVALUATION_RESULTS_FILE: evaluation results file {path}: {where}: "), message
    assert "\n" not in message


@pytest.mark.parametrize("value", [None, 0, 1], ids=["null", "integer-0", "integer-1"])
def test_figures_that_are_null_or_whole_numbers_are_shown(tmp_path, value):
    path = tmp_path / "results.json"
    model = MODEL_HANDLES[0]
    path.write_text(json.dumps(results_with("courses", model, "ndcg_at_10", value)))
    response = create_app(ApiSettings(evaluation_results_file=path), store=MemoryStore(seed_for())).test_client().get(
        "/explore?user_handle=999")
    assert response.status_code == 200
    column = response.text[response.text.index(f'data-model-handle="{model}"'):]
    column = column[:column.index("</dl>")]
    assert ("–" if value is None else f"{value:.4f}") in column


def test_experiment_reports_are_reused_for_a_while_then_recomputed():
    import pandas as pd

    from recommender.experiments.report import EVENT_COLUMNS, EXPOSURE_COLUMNS

    experiment = parse("""[[experiment]]
name = "e1"
salt = "s"
status = "running"
start = 2026-01-01T00:00:00Z
end = 2027-01-01T00:00:00Z
arms = [{ name = "a", model = "tfidf_user_interest", weight = 1 }, { name = "b", model = "ensemble_user_similarity", weight = 3 }]
""", "test").experiment[0]
    reads = []

    def read(name):
        reads.append(name)
        exposures = pd.DataFrame([("r1", 1, "a", "a", "tfidf_user_interest", 3), ("r2", 2, "b", "b", "ensemble_user_similarity", 3)],
                                 columns=EXPOSURE_COLUMNS)
        return exposures, pd.DataFrame([("r1", 5, "click", "a")], columns=EVENT_COLUMNS)

    reports = ExperimentReports(read)
    first, at = reports.report(experiment)
    assert first.variants[0].events["click"] == 1 and reads == ["e1"]
    assert reports.report(experiment) == (first, at) and reads == ["e1"]  # within REPORT_SECONDS
    assert REPORT_SECONDS > 0
    reports.seconds = 0
    reports.report(experiment)
    assert reads == ["e1", "e1"]
    assert ExperimentReports(None).report(experiment)[0] is None  # no database: nothing to report


@pytest.mark.parametrize(("content", "reason"), [
    ('{"tasks": []}', "tasks: Input should be an object"),
    (json.dumps(results_with("courses", MODEL_HANDLES[0], "ndcg_at_10", "0.41")),
     f"tasks.courses.metrics.{MODEL_HANDLES[0]}.ndcg_at_10: Input should be a valid number, got '0.41'"),
], ids=["not-the-shape", "string-figure"])
def test_gunicorn_refuses_to_start_on_a_bad_evaluation_file(tmp_path, content, reason):
    import os
    import subprocess

    from tests.live import GUNICORN, free_port

    path = tmp_path / "results.json"
    path.write_text(content)
    env = {**{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
           "EVALUATION_RESULTS_FILE": str(path), "EXPERIMENTS_FILE": ""}
    server = subprocess.run(
        [str(GUNICORN), "-c", "recommender/api/gunicorn_conf.py", "--workers", "1",
         "--bind", f"127.0.0.1:{free_port()}", "recommender.api:create_app()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert server.returncode == 2, server.stdout + server.stderr
    lines = [line for line in server.stderr.splitlines() if line.startswith("error:")]
    assert lines == [f"error: setting EVALUATION_RESULTS_FILE: evaluation results file {path}: {reason}"], server.stderr
    assert "Traceback" not in server.stderr and "Booting worker" not in server.stderr
