"""The scheduling examples must keep pointing at the real entry point and its exit codes."""

from __future__ import annotations

import configparser
import re

from recommender.cli.common import EXIT_CODES, LOCKED, STOPPED_AFTER_PUBLISH, TERMINATED
from tests.conftest import ROOT

SCHEDULING = ROOT / "docs" / "scheduling"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(SCHEDULING / name)
    return parser


def test_systemd_service_runs_the_generator_and_tolerates_a_held_lock():
    service = unit("similar-users-generator.service")["Service"]
    assert service["Type"] == "oneshot"
    assert re.search(r"\brun_generator\.py\b", service["ExecStart"])
    # A held lock (another run is doing the work) and a stop by systemd itself (before or after the
    # run was published) are not failures.
    assert set(service["SuccessExitStatus"].split()) == {str(LOCKED), str(STOPPED_AFTER_PUBLISH), str(TERMINATED)}


def test_systemd_timer_is_nightly_and_persistent():
    timer = unit("similar-users-generator.timer")["Timer"]
    assert timer["OnCalendar"].endswith("02:30:00") and timer["Persistent"] == "true"


def test_cron_line_and_documented_exit_codes_match_the_generator():
    cron = (SCHEDULING / "crontab.example").read_text()
    line = next(l for l in cron.splitlines() if l and not l.startswith("#"))
    assert line.split()[:5] == ["30", "2", "*", "*", "*"] and "run_generator.py" in line
    for code, meaning in ((0, "success"), (1, "failed"), (2, "bad input"), (3, "lock held"),
                          (4, "stopped after publishing"), (130, "interrupted"), (143, "terminated")):
        assert EXIT_CODES[code].startswith(meaning), (code, meaning)
    assert "3 lock held" in cron and "4 published then stopped" in cron


def test_operations_exit_code_table_is_the_generators():
    operations = (ROOT / "docs" / "operations" / "publishing.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", operations, re.M)
    assert {int(code): meaning for code, meaning in rows} == EXIT_CODES
