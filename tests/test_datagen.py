"""Tests for the synthetic data generator.

The generator is the yardstick for every model, so these check that it is deterministic (same
seed, same bytes), that it writes the published schema, that it scales with the number of
users, and that the hidden community/skill structure is really visible in the tables.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.data.schema import COLUMNS, LEVELS
from recommender_tools.datagen import BUILTIN_CATALOGUE, GROUND_TRUTH_COLUMNS, generate, main
from tests.conftest import REAL_DATA

TABLES = ("user_interests", "user_course_views", "user_assessment_scores", "course_tags", "ground_truth")
TAG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


def _digest(paths: dict[str, Path]) -> dict[str, str]:
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in paths.items()}


def _read(paths: dict[str, Path], name: str) -> pd.DataFrame:
    # Strings kept as written: an empty course tag must stay "", not become NaN.
    return pd.read_csv(paths[name], keep_default_na=False, na_values=[])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    base = tmp_path_factory.mktemp("datagen")
    return {
        "a": generate(base / "a", users=1000, seed=7),
        "a_again": generate(base / "a_again", users=1000, seed=7),
        "other_seed": generate(base / "other_seed", users=1000, seed=8),
        "double": generate(base / "double", users=2000, seed=7),
        "builtin": generate(base / "builtin", users=1000, seed=7, catalogue=BUILTIN_CATALOGUE),
        "builtin_again": generate(base / "builtin_again", users=1000, seed=7, catalogue=BUILTIN_CATALOGUE),
    }


@pytest.fixture(scope="module")
def tables(runs: dict[str, dict[str, Path]]) -> dict[str, pd.DataFrame]:
    return {name: _read(runs["double"], name) for name in TABLES}


def test_returns_every_table_path(runs: dict[str, dict[str, Path]]) -> None:
    paths = runs["a"]
    assert set(paths) == set(TABLES)
    assert all(path.is_file() and path.stat().st_size > 0 for path in paths.values())
    assert paths["ground_truth"].name == "ground_truth.csv"


def test_same_seed_gives_identical_bytes(runs: dict[str, dict[str, Path]]) -> None:
    assert _digest(runs["a"]) == _digest(runs["a_again"])


def test_different_seed_gives_different_data(runs: dict[str, dict[str, Path]]) -> None:
    first, other = _digest(runs["a"]), _digest(runs["other_seed"])
    for name in TABLES:
        if name != "course_tags":  # the real catalogue, whatever the seed
            assert first[name] != other[name], name
    assert first["course_tags"] == other["course_tags"]


def test_headers_match_published_schema(runs: dict[str, dict[str, Path]]) -> None:
    expected = {**COLUMNS, "ground_truth": GROUND_TRUTH_COLUMNS}
    for name in TABLES:
        header = runs["a"][name].read_text(encoding="utf-8").split("\n", 1)[0]
        assert tuple(header.replace('"', "").split(",")) == expected[name], name  # real table: quoted


def test_speaks_the_real_catalogue(runs: dict[str, dict[str, Path]], tables: dict[str, pd.DataFrame]) -> None:
    """By default the course catalogue is the published course_tags.csv, copied byte for byte."""
    real = REAL_DATA / "course_tags.csv"
    assert runs["double"]["course_tags"].read_bytes() == real.read_bytes()
    published = pd.read_csv(real, keep_default_na=False, na_values=[])
    vocabulary = set(published["course_tags"].str.strip().str.lower()) - {""}
    follows = set(tables["user_interests"]["interest_tag"])
    assert follows <= vocabulary
    assert 0.6 * len(vocabulary) < len(follows) < 0.9 * len(vocabulary)  # published: 748 of 998
    assert set(tables["user_course_views"]["course_id"]) <= set(published["course_id"])
    suffixes = ("", "-core-skills", "-fundamentals", "-for-developers", "-administration")
    named = {tag + suffix for tag in vocabulary for suffix in suffixes}
    assessed = tables["user_assessment_scores"]["assessment_tag"].str.removesuffix("-2")
    assert assessed.isin(named).all()


def test_builtin_catalogue_is_kept(runs: dict[str, dict[str, Path]]) -> None:
    """``catalogue="builtin"``: the invented slug vocabulary, same seed same bytes."""
    assert _digest(runs["builtin"]) == _digest(runs["builtin_again"])
    ui, ct = _read(runs["builtin"], "user_interests"), _read(runs["builtin"], "course_tags")
    uv = _read(runs["builtin"], "user_course_views")
    assert ui["interest_tag"].str.fullmatch(TAG_PATTERN).all()
    assert uv["course_id"].str.fullmatch(TAG_PATTERN).all()
    named = ct.loc[ct["course_tags"] != "", "course_tags"]
    assert named.str.fullmatch(TAG_PATTERN).all()
    assert (ct["course_tags"] == "").any(), "the real export has a few empty tags"
    assert ct.groupby("course_id").size().between(1, 15).all()
    assert set(uv["course_id"]) <= set(ct["course_id"])
    assert not set(ui["interest_tag"]) <= set(_read(runs["a"], "course_tags")["course_tags"])


def test_value_formats(tables: dict[str, pd.DataFrame]) -> None:
    ui, uv = tables["user_interests"], tables["user_course_views"]
    ua, ct = tables["user_assessment_scores"], tables["course_tags"]
    assert ui["interest_tag"].str.len().gt(0).all()
    assert ui["date_followed"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    assert uv["view_date"].str.fullmatch(r"\d{4}-\d\d-\d\d").all()
    assert set(uv["level"]) <= set(LEVELS)
    assert (uv["view_time_seconds"] > 0).all()
    assert pd.api.types.is_integer_dtype(uv["author_handle"])
    assert ua["user_assessment_date"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    assert ua["user_assessment_score"].between(0, 300).all()
    assert ua["assessment_tag"].nunique() <= 54
    assert (ct["course_tags"] == "").any(), "the real export has a few empty tags"


def test_views_reference_the_catalogue(tables: dict[str, pd.DataFrame]) -> None:
    uv, ct = tables["user_course_views"], tables["course_tags"]
    assert set(uv["course_id"]) <= set(ct["course_id"])
    per_course = uv.groupby("course_id")[["author_handle", "level"]].nunique()
    assert (per_course == 1).all().all(), "a course has one author and one level"
    assert not uv.duplicated(["user_handle", "course_id", "view_date"]).any()
    sessions = uv.groupby(["user_handle", "course_id"]).size()
    assert (sessions > 1).mean() > 0.3, "several rows per (user, course) on different dates"


def test_interest_duplicates_and_coverage(tables: dict[str, pd.DataFrame]) -> None:
    ui, gt = tables["user_interests"], tables["ground_truth"]
    share = ui.duplicated().mean()
    assert 0.03 < share < 0.10
    users = np.arange(1, 2001)
    assert np.array_equal(np.sort(ui["user_handle"].unique()), users)
    assert np.array_equal(gt["user_handle"].to_numpy(), users)
    assert set(gt["skill"]) == set(LEVELS)
    assert gt["community"].between(0, 19).all()


def test_row_counts_scale_linearly(runs: dict[str, dict[str, Path]]) -> None:
    for name, low, high in (("user_interests", 1.7, 2.3), ("user_course_views", 1.7, 2.3),
                            ("user_assessment_scores", 1.5, 2.6), ("ground_truth", 2.0, 2.0)):
        small = len(_read(runs["a"], name))
        large = len(_read(runs["double"], name))
        assert low <= large / small <= high, (name, small, large)
    # The catalogue is fixed-size: it does not grow with the number of users.
    assert runs["a"]["course_tags"].read_bytes() == runs["double"]["course_tags"].read_bytes()


def test_shape_per_user_matches_published_rates(tables: dict[str, pd.DataFrame]) -> None:
    # Published at 10,000 users: 297,526 interest rows, 249,238 views by 8,760 users,
    # 6,571 assessments by 3,114 users.  Per user, with generous slack for 2,000 users.
    n = 2000
    assert 22 < len(tables["user_interests"]) / n < 38
    assert 18 < len(tables["user_course_views"]) / n < 32
    assert 0.8 < tables["user_course_views"]["user_handle"].nunique() / n < 0.95
    assert 0.45 < len(tables["user_assessment_scores"]) / n < 0.9
    assert 0.25 < tables["user_assessment_scores"]["user_handle"].nunique() / n < 0.37


def test_interest_tags_reveal_communities(tables: dict[str, pd.DataFrame]) -> None:
    """Cosine neighbours on interest tags are mostly, but not only, from the same community."""
    ui = tables["user_interests"].drop_duplicates(["user_handle", "interest_tag"])
    community = tables["ground_truth"]["community"].to_numpy()
    n = community.size
    tag = pd.factorize(ui["interest_tag"])[0]
    x = np.zeros((n, tag.max() + 1))
    x[ui["user_handle"].to_numpy() - 1, tag] = 1.0
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    np.fill_diagonal(sim, -1.0)
    same = community[:, None] == community[None, :]
    off_diagonal = ~np.eye(n, dtype=bool)
    assert sim[same & off_diagonal].mean() > 2 * sim[~same].mean()
    top = np.argpartition(-sim, 10, axis=1)[:, :10]
    precision = (community[top] == community[:, None]).mean()
    assert 0.5 < precision < 0.97, precision


def test_skill_drives_levels_and_scores(tables: dict[str, pd.DataFrame]) -> None:
    gt = tables["ground_truth"].set_index("user_handle")["skill"]
    uv = tables["user_course_views"]
    own_level = (uv["level"] == uv["user_handle"].map(gt)).mean()
    assert own_level > 0.55
    ua = tables["user_assessment_scores"]
    mean_score = ua.groupby(ua["user_handle"].map(gt))["user_assessment_score"].mean()
    assert mean_score["Beginner"] < mean_score["Intermediate"] < mean_score["Advanced"]


def test_communities_option(tmp_path: Path) -> None:
    paths = generate(tmp_path, users=300, seed=3, communities=4)
    gt = _read(paths, "ground_truth")
    assert set(gt["community"]) <= {0, 1, 2, 3}
    assert len(gt) == 300


def test_cli_writes_files(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    assert main(["--users", "200", "--seed", "5", "--out", str(out), "--communities", "6"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "course_tags.csv", "ground_truth.csv", "user_assessment_scores.csv",
        "user_course_views.csv", "user_interests.csv"])
    assert main(["--users", "200", "--seed", "5", "--out", str(tmp_path / "cli2"),
                 "--communities", "6"]) == 0
    for name in ("user_interests.csv", "user_course_views.csv"):
        assert (out / name).read_bytes() == (tmp_path / "cli2" / name).read_bytes()


@pytest.mark.parametrize("kwargs", [{"users": 0}, {"users": 10, "communities": 0},
                                    {"users": 10, "communities": 10_000}])
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, **kwargs)


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--users", "0", "--out", str(tmp_path)])
    assert exc.value.code == 2


def test_cli_names_a_missing_catalogue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert main(["--users", "10", "--out", str(tmp_path / "out"), "--catalogue", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {missing / 'course_tags.csv'}: file not found"]


def test_refuses_to_overwrite_its_catalogue(tmp_path: Path) -> None:
    folder = tmp_path / "catalogue"
    folder.mkdir()
    (folder / "course_tags.csv").write_bytes((REAL_DATA / "course_tags.csv").read_bytes())
    with pytest.raises(ValueError, match="catalogue's own folder"):
        generate(folder, users=10, catalogue=folder)
    assert (folder / "course_tags.csv").read_bytes() == (REAL_DATA / "course_tags.csv").read_bytes()
