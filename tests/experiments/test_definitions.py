"""The experiments file: what it accepts, and one line naming the file for everything it refuses."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from recommender.experiments import definitions
from recommender.experiments.definitions import ExperimentsFileError
from tests.conftest import ROOT
from tests.experiments.files import INTEREST, LEVEL, VIEWS, experiment_toml

SECOND_ARMS = (("x", INTEREST, 1), ("y", LEVEL, 1))


def good(status="running", w1="1", model=VIEWS) -> str:
    return experiment_toml("a", status=status, end="2026-02-01T00:00:00Z", arms=(("interest", INTEREST, w1), ("views", model, 1)))


def second(status: str, start: str) -> str:
    return experiment_toml("b", salt="s2", status=status, start=start, end="2026-03-01T00:00:00Z", arms=SECOND_ARMS)


def test_example_file_in_the_repository_is_valid():
    parsed = definitions.load(ROOT / "docs" / "experiments.example.toml")
    assert parsed.experiment and all(e.status in ("running", "paused", "stopped") for e in parsed.experiment)


def test_a_good_file_and_its_active_experiment():
    parsed = definitions.parse(good(model="KNN_collab_filtering_user_course_view"), "x.toml")
    experiment = parsed.experiment[0]
    assert experiment.arms[1].model == "knn_collab_filtering_user_course_view"  # case-insensitive handle
    assert experiment.control_arm == "interest"
    assert parsed.active(datetime(2026, 1, 15, tzinfo=timezone.utc)) is experiment
    assert parsed.active(datetime(2026, 2, 1, tzinfo=timezone.utc)) is None  # end is exclusive
    assert parsed.active(datetime(2025, 12, 31, tzinfo=timezone.utc)) is None
    paused = definitions.parse(good(status="paused"), "x.toml")
    assert paused.active(datetime(2026, 1, 15, tzinfo=timezone.utc)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (good(model="no_such_model"), "experiment[1].arms[2].model: unknown model 'no_such_model'"),
        (good(w1="0"), "experiment[1].arms[1].weight: Input should be greater than 0"),
        (good(w1="-2"), "experiment[1].arms[1].weight: Input should be greater than 0"),
        (good() + second("running", "2026-01-20T00:00:00Z"),
         "experiments 'a' and 'b' are both running on the same traffic"),
        (good(status="maybe"), "experiment[1].status: Input should be 'running', 'paused' or 'stopped'"),
        ("[[experiment]\nname = 'a'", "not valid TOML"),
        (good().replace("2026-01-01T00:00:00Z", "2026-01-01T00:00:00"), "experiment[1].start: needs a UTC offset"),
        (good().replace('name = "views"', 'name = "interest"'), "arm name 'interest' is used twice"),
        (good().replace('name = "views"', 'name = "fallback"'), "arm name 'fallback' is reserved"),
        (good().replace("salt", "sault"), "experiment[1].salt: Field required"),
    ],
)
def test_bad_files_are_refused_with_one_line_naming_the_file(tmp_path, text, expected):
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    with pytest.raises(ExperimentsFileError) as caught:
        definitions.load(path)
    message = str(caught.value)
    assert message.startswith(f"experiments file {path}: ") and expected in message, message
    assert "\n" not in message


def test_experiments_that_do_not_overlap_or_are_not_running_may_share_the_traffic(tmp_path):
    later = definitions.parse(good() + second("running", "2026-02-01T00:00:00Z"), "x")
    paused = definitions.parse(good() + second("paused", "2026-01-10T00:00:00Z"), "x")
    assert len(later.experiment) == len(paused.experiment) == 2


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ExperimentsFileError, match=r"experiments file .*nope.toml: cannot be read: no such file"):
        definitions.load(tmp_path / "nope.toml")
