"""gunicorn started by hand as the docs say, from a folder whose ``.env`` is not exported: the
service reads it (DynamoDB endpoint, table and boto3's credentials), and a variable set in the
environment wins over the file."""

from __future__ import annotations

import pytest
import requests

from tests.api.conftest import MODELS
from tests.live import gunicorn_server

pytestmark = pytest.mark.dynamodb


def test_gunicorn_reads_dot_env_of_its_working_directory(seeded_settings, tmp_path):
    (tmp_path / ".env").write_text(
        f"DYNAMODB_ENDPOINT_URL={seeded_settings.dynamodb_endpoint_url}\n"
        f"DYNAMODB_TABLE={seeded_settings.dynamodb_table}\n"
        "AWS_ACCESS_KEY_ID=local\nAWS_SECRET_ACCESS_KEY=local\nAWS_REGION=us-east-1\n"
        f"DEFAULT_MODEL={MODELS[1]}\n"
        "API_KEYS=from-the-file\n")
    # Only the file says where the data is and which credentials to use; the environment says
    # which model is the default and that there are no API keys (it wins).
    env = {"DYNAMODB_ENDPOINT_URL": None, "DYNAMODB_TABLE": None, "AWS_ACCESS_KEY_ID": None,
           "AWS_SECRET_ACCESS_KEY": None, "AWS_REGION": None, "AWS_DEFAULT_REGION": None,
           "DEFAULT_MODEL": MODELS[2], "API_KEYS": ""}
    with gunicorn_server(seeded_settings, tmp_path / "gunicorn.log", env=env, cwd=tmp_path) as base:
        response = requests.post(f"{base}/similar-users/", json={"user_handle": 999}, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()[0]["model_handle"] == MODELS[2]
    log = (tmp_path / "gunicorn.log").read_text()
    assert "NoCredentialsError" not in log
