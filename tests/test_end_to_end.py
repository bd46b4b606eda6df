"""Synthetic data → run_generator.py → DynamoDB Local → gunicorn → HTTP, checked independently."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.config import ApiSettings
from recommender.models.registry import MODEL_HANDLES
from tests.conftest import ROOT
from tests.live import gunicorn_server

pytestmark = [pytest.mark.dynamodb, pytest.mark.slow]

MODELS = MODEL_HANDLES


def env_for(endpoint: str, table: str) -> dict[str, str]:
    return {**os.environ, "DYNAMODB_ENDPOINT_URL": endpoint, "DYNAMODB_TABLE": table, "LOG_LEVEL": "WARNING"}


def run_generator(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "run_generator.py", "--no-progress", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )


@pytest.fixture(scope="module")
def served(dynamodb_endpoint, small_dataset, tmp_path_factory):
    """Run the generator once into a fresh table, then serve it with gunicorn on a free port."""
    table = f"e2e_{os.getpid()}"
    env = env_for(dynamodb_endpoint, table)
    workdir = tmp_path_factory.mktemp("e2e")
    report = workdir / "run.json"
    result = run_generator(["--data-dir", str(small_dataset), "--report", str(report)], env)
    assert result.returncode == 0, result.stderr[-3000:]
    with gunicorn_server(ApiSettings(dynamodb_endpoint_url=dynamodb_endpoint, dynamodb_table=table), workdir / "gunicorn.log") as base:
        yield base, json.loads(report.read_text())


def fetch_all(base: str, model: str, users) -> dict[int, dict]:
    answers = {}
    with requests.Session() as session:
        for user in users:
            response = session.post(f"{base}/similar-users/", json={"user_handle": int(user), "model_handle": model}, timeout=5)
            if response.status_code == 200:
                body = response.json()
                assert isinstance(body, list) and len(body) == 1
                assert set(body[0]) >= {"model_handle", "similar_users"} and body[0]["model_handle"] == model
                answers[int(user)] = body[0]
            else:
                assert response.status_code == 404, response.text
    return answers


def test_run_report_covers_every_model(served, small_dataset):
    _, report = served
    assert [m["handle"] for m in report["models"]] == list(MODELS)
    interests_users = pd.read_csv(small_dataset / "user_interests.csv")["user_handle"].nunique()
    by_model = {m["handle"]: m for m in report["models"]}
    assert by_model["tfidf_user_interest"]["users_covered"] == interests_users
    assert all(m["items_written"] == m["users_covered"] for m in report["models"])


def test_tfidf_answers_equal_an_independent_brute_force(served, small_dataset):
    base, _ = served
    # Independent of the package: sklearn's TfidfVectorizer over each user's set of tags.
    interests = pd.read_csv(small_dataset / "user_interests.csv")
    interests["interest_tag"] = interests["interest_tag"].str.strip().str.lower()
    docs = interests.drop_duplicates(["user_handle", "interest_tag"]).groupby("user_handle")["interest_tag"].apply(list)
    vectorizer = TfidfVectorizer(analyzer=lambda tags: tags)
    unit = vectorizer.fit_transform(docs.tolist()).toarray()
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    users = docs.index.to_numpy()
    answers = fetch_all(base, "tfidf_user_interest", users)
    assert len(answers) == len(users)
    mismatches = 0
    for row, user in enumerate(users):
        expected_order = np.lexsort((users, -np.round(sims[row], 6)))[:10]
        got = answers[int(user)]
        np.testing.assert_allclose(got["scores"], sims[row, expected_order], atol=2e-6)
        mismatches += got["similar_users"] != users[expected_order].tolist()
    # Ids may differ only where two scores are equal to the sixth decimal.
    assert mismatches <= len(users) * 0.01


def community_precision(answers: dict[int, dict], truth: pd.Series) -> float:
    same = [truth[n] == truth[u] for u, a in answers.items() for n in a["similar_users"]]
    return float(np.mean(same))


@pytest.mark.parametrize("model, column, margin, coverage", [
    ("tfidf_user_interest", "community", 0.5, 0.8),
    ("knn_collab_filtering_user_course_view", "community", 0.4, 0.8),
    ("dnn_collab_filtering_user_course_level", "skill", 0.15, 0.8),
    ("als_collab_filtering_user_course_view", "community", 0.4, 0.8),  # 32 factors on 600 users: 0.68 vs chance 0.19
    ("knn_collab_filtering_user_assessment_score", "community", 0.3, 0.2),  # only users with assessments
    ("ensemble_user_similarity", "community", 0.4, 0.95),  # every user any model covers (0.69 here)
])
def test_neighbours_share_the_planted_structure(served, small_dataset, model, column, margin, coverage):
    base, _ = served
    truth = pd.read_csv(small_dataset / "ground_truth.csv").set_index("user_handle")[column]
    answers = fetch_all(base, model, truth.index)
    assert len(answers) > coverage * len(truth)
    # Fewer than 10 only when fewer users share anything with this one (no zero-score neighbours).
    assert all(1 <= len(a["similar_users"]) <= 10 and u not in a["similar_users"] for u, a in answers.items())
    # (600 users over a catalogue of ~6k courses: many share few courses.)
    assert np.mean([len(a["similar_users"]) == 10 for a in answers.values()]) > 0.5
    chance = float((truth.value_counts(normalize=True) ** 2).sum())
    assert community_precision(answers, truth) > chance + margin


def test_models_endpoint_lists_every_published_model_with_the_runs_coverage(served):
    base, report = served
    listed = requests.get(f"{base}/models", timeout=5).json()["models"]
    covered = {m["handle"]: m["users_covered"] for m in report["models"]}
    assert [m["model_handle"] for m in listed] == list(MODEL_HANDLES)
    assert all(m["published"] and m["run_id"] == report["run_id"] for m in listed)
    assert {m["model_handle"]: m["users_covered"] for m in listed} == covered
    assert covered["ensemble_user_similarity"] == max(covered.values())


def test_default_model_and_unknown_user(served):
    base, _ = served
    body = requests.post(f"{base}/similar-users/", json={"user_handle": 1}, timeout=5).json()
    assert body[0]["model_handle"] == "tfidf_user_interest"
    missing = requests.post(f"{base}/similar-users/", json={"user_handle": 10**9}, timeout=5)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_bad_input_exits_2_with_one_line_and_writes_nothing(dynamodb_endpoint, small_dataset, tmp_path):
    for name in ("user_interests.csv", "user_course_views.csv", "user_assessment_scores.csv", "course_tags.csv"):
        shutil.copy(small_dataset / name, tmp_path / name)
    views = pd.read_csv(tmp_path / "user_course_views.csv").drop(columns=["view_time_seconds"])
    views.to_csv(tmp_path / "user_course_views.csv", index=False)
    table = f"bad_{os.getpid()}"
    result = run_generator(["--data-dir", str(tmp_path)], env_for(dynamodb_endpoint, table))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'user_course_views.csv'}: column 'view_time_seconds': required column missing"
    )
    import boto3

    client = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1")
    names = client.get_paginator("list_tables").paginate().build_full_result()["TableNames"]
    assert not [n for n in names if n.startswith(table)], "bad input must not touch the database"


def test_dry_run_writes_json_lines(small_dataset, tmp_path):
    out = tmp_path / "items.jsonl"
    env = env_for("http://127.0.0.1:9", "unused_table")
    result = run_generator(["--data-dir", str(small_dataset), "--models", "tfidf_user_interest", "--top-n", "3", "--dry-run", str(out)], env)
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(items) == pd.read_csv(small_dataset / "user_interests.csv")["user_handle"].nunique()
    assert all(len(i["similar_users"]) == 3 and i["model_handle"] == "tfidf_user_interest" for i in items)


def test_unknown_model_is_a_usage_error(small_dataset):
    result = run_generator(["--data-dir", str(small_dataset), "--models", "nope"], env_for("http://127.0.0.1:9", "x_table"))
    assert result.returncode == 2 and "unknown model nope" in result.stderr


def test_database_unreachable_exits_1_with_one_line(small_dataset):
    result = run_generator(["--data-dir", str(small_dataset), "--models", "tfidf_user_interest"], env_for("http://127.0.0.1:9", "x_table"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: DynamoDB unreachable")
