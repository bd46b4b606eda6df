"""The documentation's figures are rendered from the JSON that measured them, never typed by hand."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib

import recommender
from tests.conftest import ROOT

TRACKER_WORDS = re.compile(r"\bissue\s+[0-9]+|\bthis session\b", re.I)


def _renderer():
    spec = importlib.util.spec_from_file_location("render_docs", ROOT / "scripts" / "render_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rendering_the_committed_json_changes_no_file():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_docs.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_docs_site_builds_with_warnings_as_errors(tmp_path):
    """``mkdocs build --strict``: every page in the nav exists, no broken link or anchor."""
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "changelog" / "index.html").read_text().count("Keep a Changelog") == 1


def test_a_hand_edit_inside_a_block_is_overwritten_and_flagged():
    render = _renderer()
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- BEGIN generated: performance-summary -->\n(.*?)<!-- END", readme, re.S)[1]
    assert "measured" in block and "extrapolated" in block
    edited = readme.replace(block, block.replace("measured", "measured (typed)", 1))
    assert edited != readme
    assert render.render_text(edited, set()) == readme


def test_an_unknown_block_name_is_an_error():
    render = _renderer()
    try:
        render.render_text("<!-- BEGIN generated: nope -->\nx\n<!-- END generated: nope -->\n", set())
    except SystemExit as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("an unknown block was accepted")


def test_the_10m_estimate_is_the_sum_of_its_stages_and_labelled():
    render = _renderer()
    estimate = render.ten_million()
    driver = sum(s * f for _, where, s, (f, _) in estimate["stages"] if where == "driver")
    partitions = sum(s * f for _, where, s, (f, _) in estimate["stages"] if where == "partitions")
    assert abs(estimate["total"] - (driver + partitions / estimate["workers"])) < 1e-6
    assert estimate["run"]["engine"] == "dask" and estimate["users"] == estimate["run"]["users"]
    summary = render.performance_summary()
    assert re.search(r"^\| \*\*extrapolated\*\* \| generator, 10,000,000 users, Dask", summary, re.M)
    assert all(line.startswith(("| measured |", "| **extrapolated** |", "| **not a result** |"))
               for line in summary.splitlines()[2:])


def test_a_scale_run_with_its_recall_floor_overridden_is_never_shown_as_a_result():
    render = _renderer()
    run = {"min_recall": 0.0, "recall_at_10": {"a": 0.231, "b": 1.0}}
    assert render.floor_overridden(run).startswith("not a result: made with the recall floor overridden (MIN_RECALL=0)")
    assert "`a` recall@10 0.231" in render.floor_overridden(run) and "`b`" not in render.floor_overridden(run)
    assert render.floor_overridden({"min_recall": 0.95, "recall_at_10": {"a": 0.96}}) is None
    assert render.floor_overridden({"recall_at_10": {"a": 1.0}}) is None
    runs = _json_runs()
    summary = render.performance_summary()
    for r in runs.values():
        if render.floor_overridden(r):
            row = next(line for line in summary.splitlines() if f"{r['users']:,} users, {r['engine']}" in line)
            assert row.startswith("| **not a result** |") and _duration_text(r) not in row


def test_no_tracker_words_in_the_product():
    paths = [ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "recommender").rglob("*.py")]
    found = [f"{p.relative_to(ROOT)}: {m[0]}" for p in paths for m in TRACKER_WORDS.finditer(p.read_text())]
    assert not found, found


def test_readme_is_short_and_keeps_the_two_commands_first():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    first_screen = "\n".join(lines[:40])
    assert "make run" in first_screen and "make test" in first_screen


def test_package_version_is_pyprojects():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert recommender.__version__ == project["version"]


def _json_runs() -> dict:
    import json

    return json.loads((ROOT / "benchmarks" / "results" / "scale.json").read_text())["runs"]


def _duration_text(run: dict) -> str:
    return f"{run['items_written']:,} items at"
