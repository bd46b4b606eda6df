"""Reloading the experiments file while the service runs: a missing or empty file changes nothing
(WARNING), a broken one changes nothing (ERROR), ``experiment = []`` ends them all; and which file
the service (and the report) read."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from recommender.config import ApiSettings
from recommender.experiments import definitions
from recommender.experiments.definitions import ExperimentsFileError, NothingDeclared
from recommender.experiments.live import LiveExperiments, experiments_file
from tests.experiments.files import experiment_toml

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture
def live(tmp_path):
    path = tmp_path / "experiments.toml"
    path.write_text(experiment_toml("a"))
    experiments = LiveExperiments(path, reload_seconds=3600)
    assert experiments.active(NOW).name == "a"
    return experiments


@pytest.mark.parametrize(
    ("change", "level"),
    [
        (lambda p: p.write_text(""), "WARNING"),
        (lambda p: p.write_text("# all commented out\n\n"), "WARNING"),
        (lambda p: p.unlink(), "WARNING"),
        (lambda p: p.write_text("[[experiment]\nname = "), "ERROR"),
        (lambda p: p.write_text(experiment_toml("a", status="maybe")), "ERROR"),
    ],
    ids=["empty", "comments-only", "missing", "not-toml", "invalid"],
)
def test_a_file_gone_empty_or_broken_keeps_the_last_good_definitions(live, caplog, change, level):
    change(live.path)
    with caplog.at_level(logging.INFO, logger="recommender.experiments.live"):
        assert live.reload() is False
    assert live.active(NOW).name == "a"
    assert [r.levelname for r in caplog.records] == [level]
    assert str(live.path) in caplog.records[0].getMessage()
    if level == "WARNING":
        assert "experiment = []" in caplog.records[0].getMessage()


def test_experiment_list_empty_on_purpose_ends_them_all(live, caplog):
    live.path.write_text("# no experiments now\nexperiment = []\n")
    with caplog.at_level(logging.INFO, logger="recommender.experiments.live"):
        assert live.reload() is True
    assert live.active(NOW) is None and live.current.experiment == ()
    assert [r.levelname for r in caplog.records] == ["INFO"]


def test_at_start_an_empty_or_missing_file_is_refused_naming_the_fix(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("\n")
    for path in (empty, tmp_path / "missing.toml"):
        with pytest.raises(NothingDeclared) as caught:
            definitions.load(path)
        assert str(caught.value).startswith(f"experiments file {path}: ")
        assert isinstance(caught.value, ExperimentsFileError)
    with pytest.raises(NothingDeclared, match=r"write `experiment = \[\]`"):
        LiveExperiments(empty)


def test_which_file(tmp_path, monkeypatch):
    monkeypatch.delenv("EXPERIMENTS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert experiments_file(ApiSettings()) is None  # the default file does not exist: no experiments
    (tmp_path / "experiments.toml").write_text(experiment_toml("a"))
    assert experiments_file(ApiSettings()) == "experiments.toml"  # the default, found
    monkeypatch.setenv("EXPERIMENTS_FILE", str(tmp_path / "typo.toml"))
    assert experiments_file(ApiSettings()) == str(tmp_path / "typo.toml")  # named: must exist (refused at start)
