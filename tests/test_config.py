"""Settings: one declaration each, checked ranges, one-line errors, and docs that match the code."""

from __future__ import annotations

import os
import re

import pytest

from recommender.config import ApiSettings, GeneratorSettings, SettingsError, StoreSettings, env_name, load_settings, markdown_table
from tests.conftest import ROOT

ALL = {env_name(cls, f): (cls, f) for cls in (StoreSettings, GeneratorSettings, ApiSettings) for f in cls.model_fields}
# example.env points the laptop at DynamoDB Local; everything else there is the default.
LOCAL_VALUES = {"DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:8000"}


def _generated_block(path, name: str) -> str:
    text = path.read_text()
    start = text.index(f"<!-- BEGIN generated: {name} -->\n") + len(f"<!-- BEGIN generated: {name} -->\n")
    return text[start:text.index(f"<!-- END generated: {name} -->")].strip()


def test_configuration_table_is_generated_from_the_settings():
    table = _generated_block(ROOT / "docs" / "configuration.md", "configuration")
    assert table == markdown_table()
    documented = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", table, re.M)
    assert sorted(documented) == sorted(ALL), "every setting, once"


def test_readme_key_settings_are_rows_of_the_full_table():
    """The README's short list is a subset rendered by the same generator: same default, same meaning."""
    key = _generated_block(ROOT / "README.md", "key-settings")
    rows = key.splitlines()
    assert rows[:2] == markdown_table().splitlines()[:2] and len(rows) == 2 + 10
    full = set(markdown_table().splitlines())
    assert all(row in full for row in rows[2:])


def test_markdown_table_subset_keeps_the_order_asked_and_refuses_unknown_names():
    rows = markdown_table(["API_KEYS", "TOP_N"]).splitlines()[2:]
    assert [r.split("`")[1] for r in rows] == ["API_KEYS", "TOP_N"]
    assert "(1..100)" in rows[1] and "| API |" in rows[0]
    with pytest.raises(KeyError, match="NO_SUCH_SETTING"):
        markdown_table(["TOP_N", "NO_SUCH_SETTING"])


def test_example_env_names_every_setting_with_its_default():
    assignments = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / "example.env").read_text(), re.M))
    assert set(ALL) <= set(assignments), set(ALL) - set(assignments)
    assert set(assignments) - set(ALL) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for name, value in assignments.items():
        if name in ALL and name not in LOCAL_VALUES:
            cls, field = ALL[name]
            default = cls.model_fields[field].get_default(call_default_factory=True)
            parsed = cls.model_validate({field: value}).__getattribute__(field) if value else None
            # Empty is the default (env_ignore_empty), whatever the default is.
            assert parsed == default or value == "", (name, value, default)
        elif name in LOCAL_VALUES:
            assert value == LOCAL_VALUES[name]


@pytest.mark.parametrize(
    ("cls", "name", "value", "message"),
    [
        (GeneratorSettings, "TOP_N", "0", "setting TOP_N='0': Input should be greater than or equal to 1"),
        (GeneratorSettings, "TOP_N", "ten", "setting TOP_N='ten': Input should be a valid integer"),
        (GeneratorSettings, "WRITE_THREADS", "1000", "setting WRITE_THREADS='1000': Input should be less than or equal to 64"),
        (GeneratorSettings, "MODEL_PARAMS", "{bad", "setting MODEL_PARAMS='{bad': not valid JSON"),
        (GeneratorSettings, "MODEL_PARAMS", '{"nope": {}}', "unknown model 'nope'"),
        (GeneratorSettings, "MODEL_PARAMS", '{"tfidf_user_interest": {"min_dff": 2}}', "unknown parameter 'min_dff'"),
        (GeneratorSettings, "DYNAMODB_TABLE", "ab", "setting DYNAMODB_TABLE='ab'"),
        (ApiSettings, "DEFAULT_MODEL", "nope", "setting DEFAULT_MODEL='nope': unknown model 'nope'"),
        (ApiSettings, "API_DB_READ_TIMEOUT", "-1", "setting API_DB_READ_TIMEOUT='-1': Input should be greater than 0"),
        (ApiSettings, "LOG_FORMAT", "xml", "setting LOG_FORMAT='xml'"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch, tmp_path, cls, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(cls, tmp_path / "none.env")
    assert str(caught.value).startswith(message) or message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_env_file_fills_in_and_the_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the file is loaded into the environment: a copy
    env = tmp_path / ".env"
    env.write_text("TOP_N=7\nKEEP_RUNS=3\nMODEL_PARAMS={\"knn_collab_filtering_user_course_view\": {\"weighting\": \"log\"}}\n"
                   "AWS_ACCESS_KEY_ID=from-file\nAWS_SECRET_ACCESS_KEY=from-file\n")
    monkeypatch.setenv("KEEP_RUNS", "5")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")
    monkeypatch.delenv("TOP_N", raising=False)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    settings = load_settings(GeneratorSettings, env)
    assert (settings.top_n, settings.keep_runs) == (7, 5)
    assert settings.model_params == {"knn_collab_filtering_user_course_view": {"weighting": "log"}}
    # Not only the settings: boto3 finds the file's credentials in the environment, where one
    # already set wins.
    import boto3

    credentials = boto3.session.Session().get_credentials()
    assert (credentials.access_key, credentials.secret_key) == ("from-file", "from-env")


def test_model_params_reach_the_generator(small_dataset, tmp_path, monkeypatch, capsys):
    """A tuned parameter set in configuration is what the generator's model is built with."""
    import json

    from recommender.cli.generate import main

    monkeypatch.setenv("MODEL_PARAMS", json.dumps({"tfidf_user_interest": {"min_df": 1000000}}))
    out = tmp_path / "items.jsonl"
    code = main(["--no-progress", "--data-dir", str(small_dataset), "--models", "tfidf_user_interest",
                 "--dry-run", str(out), "--report", str(tmp_path / "r.json")])
    # min_df above every tag's count leaves no vocabulary: no user is covered, so nothing is published.
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: model tfidf_user_interest covers no user (before: 0, after: 0); not publishing")
