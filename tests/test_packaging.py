"""What ``pip install .[api]`` brings and imports, and that the pinned requirements match pyproject.

The service must start from ``pip install .[api]`` without TensorFlow, faiss, Dask, implicit or
numba.  Two checks, both offline: the api extra's dependency closure (from the installed
packages' own metadata) holds none of them, and what ``create_app()`` really imports is inside
that closure (so an import of pandas or TensorFlow creeping into the API fails here, not in a
fresh deployment).  The pins of ``make install`` are checked against the declared ranges.  And the
installed package works without the checkout (below).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import uuid
from importlib import metadata
from pathlib import Path

import pytest

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REAL_DATA, ROOT

PROJECT = "similar-users-recommender"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
# The distributions the service must do without.
HEAVY = {"tensorflow", "tensorflow-cpu", "keras", "faiss-cpu", "dask", "distributed", "implicit", "numba", "llvmlite"}
# Imported when present, skipped when absent (botocore's CA bundle, numpy.f2py's charset guess).
OPTIONAL_IMPORTS = {"certifi", "charset-normalizer"}


def declared(*extras: str) -> list[Requirement]:
    """The requirements of the core and ``extras``, self-references (``pkg[generator]``) expanded."""
    out = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in EXTRAS[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == PROJECT:
                todo.extend(req.extras)
            else:
                out.append(req)
    return out


def closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution ``requirements`` pull in, by the installed packages' metadata."""
    found: set[str] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in found:
            continue
        found.add(name)
        for text in metadata.requires(name) or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append(sub)
    return found


def pins(file: str) -> dict[str, Version]:
    out = {}
    for line in (ROOT / file).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r"):
            requirement = Requirement(line)
            pinned = [spec.version for spec in requirement.specifier if spec.operator == "=="]
            assert pinned, f"{file}: {line!r} is not pinned with =="
            out[canonicalize_name(requirement.name)] = Version(pinned[0])
    return out


def test_the_api_extra_pulls_in_no_heavy_package():
    api = closure(declared("api"))
    assert {"flask", "boto3", "gunicorn", "cachetools"} <= api  # the closure is really walked
    assert not api & HEAVY, api & HEAVY
    assert HEAVY - {"llvmlite", "tensorflow"} <= closure(declared("generator", "dask"))  # ... and would see them


def imported_by(statement: str) -> set[str]:
    """Top-level modules a fresh interpreter imports to run ``statement`` (startup's own left out)."""
    code = (f"import json, sys; before = set(sys.modules); {statement}; "
            "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_service_imports_only_what_the_api_extra_installs():
    # The app, and gunicorn's settings with its gevent worker (loaded by path, as make serve does).
    modules = imported_by("from recommender.api import create_app; create_app()")
    modules |= imported_by("import runpy; runpy.run_path('recommender/api/gunicorn_conf.py')")
    assert {"flask", "gevent", "gunicorn"} <= modules
    assert not modules & {"tensorflow", "keras", "faiss", "dask", "distributed", "implicit", "numba", "recommender_tools"}
    providers = metadata.packages_distributions()
    imported = {canonicalize_name(d) for m in modules for d in providers.get(m, [])} - {PROJECT} - OPTIONAL_IMPORTS
    assert imported, "no distribution found for the imported modules"
    assert imported <= closure(declared("api")), imported - closure(declared("api"))


def test_requirements_pin_exactly_the_declared_dependencies_within_range():
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    build = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    wanted_runtime = {canonicalize_name(r.name): r for r in declared("api", "generator", "dask")}
    wanted_dev = {canonicalize_name(r.name): r for r in [*declared("dev"), *build]}
    assert set(runtime) == set(wanted_runtime), set(runtime) ^ set(wanted_runtime)
    assert set(dev) == set(wanted_dev) - set(wanted_runtime), set(dev) ^ (set(wanted_dev) - set(wanted_runtime))
    for name, version in {**runtime, **dev}.items():
        requirement = wanted_runtime.get(name) or wanted_dev[name]
        assert requirement.specifier.contains(version), f"{name}=={version} is outside pyproject's {requirement}"


# --- the installed package, outside a checkout ---------------------------------------------------------------------
# A wheel built from this tree (``pip wheel --no-deps``), installed into a fresh virtual environment whose only other
# entries are the dependencies of the interpreter running the tests (a .pth line per site-packages folder: its .pth
# files, the editable install of this checkout among them, are not run).  Every command runs with its working
# directory outside the checkout and no PYTHONPATH: the package's code can come from the wheel only.

SCRIPTS = sorted(PYPROJECT["project"]["scripts"])


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{cmd}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _outside_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROMETHEUS_MULTIPROC_DIR", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The virtual environment holding the wheel; ``bin/`` has the console scripts."""
    base = tmp_path_factory.mktemp("installed")
    src = base / "src"  # the tree's files git knows (committed or not, ignored ones left out): no build/ in the checkout
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for name in filter(None, listed.split("\0")):
        path, target = ROOT / name, src / name
        if path.is_symlink() and not path.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(os.readlink(path))
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
          "--wheel-dir", base / "dist", src], env=_outside_env())
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    (wheel,) = (base / "dist").glob("*.whl")
    # Before the dependencies are added, and without PYTHONPATH: pip would take the checkout's own install for this one.
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index", "--quiet",
          wheel], env=_outside_env())
    purelib = _run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    deps = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    Path(purelib, "test-dependencies.pth").write_text("".join(f"{d}\n" for d in deps))
    (base / "elsewhere").mkdir()
    return venv


def test_the_installed_package_is_the_wheel_and_nothing_of_the_checkout(installed: Path):
    code = ("import importlib.util, json, recommender, recommender_tools; print(json.dumps([recommender.__file__, "
            "recommender_tools.__file__, importlib.util.find_spec('benchmarks') is None, importlib.util.find_spec('tests') is None]))")
    out = _run([installed / "bin" / "python", "-c", code], cwd=installed.parent / "elsewhere", env=_outside_env()).stdout
    package, tools, no_benchmarks, no_tests = json.loads(out)
    for path in (package, tools):
        assert Path(path).is_relative_to(installed) and not Path(path).is_relative_to(ROOT), path
    assert no_benchmarks and no_tests
    catalogue = installed.glob("lib/python*/site-packages/recommender_tools/catalogue/course_tags.csv")
    assert [p.read_bytes() for p in catalogue] == [(REAL_DATA / "course_tags.csv").read_bytes()]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_installed_console_script_answers_help_outside_a_checkout(installed: Path, script: str):
    result = _run([installed / "bin" / script, "--help"], cwd=installed.parent / "elsewhere", env=_outside_env(), timeout=300)
    assert result.stdout.startswith("usage:"), result.stdout[:500]


@pytest.mark.slow  # datagen, the generator (two models), gunicorn, traffic and the report
def test_the_installed_ab_demo_runs_end_to_end_outside_a_checkout(installed: Path, dynamodb_endpoint: str):
    """``similar-users-ab-demo`` as a user runs it: it generates its data (the default 10,000 users), publishes two
    models, serves them with gunicorn, simulates the traffic and writes the report, whose winner must be the model
    the planted communities favour with p < 0.01 (exit 0 only then).  The two models' planted precisions are about
    two points apart, so the simulated users click by their community only (p-in 1, p-out 0, where the demo's
    defaults are 0.3 and 0.03): 6,000 requests then decide."""
    work = installed.parent / "demo"
    work.mkdir()
    prefix = f"test_abdemo_{uuid.uuid4().hex[:8]}"
    env = {**_outside_env(), "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint}
    try:
        result = subprocess.run(
            [installed / "bin" / "similar-users-ab-demo", "--data-dir", "data", "--table-prefix", prefix,
             "--requests", "6000", "--max-seconds", "300", "--connections", "4", "--p-in", "1", "--p-out", "0",
             "--out-dir", "report"],
            cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        assert "CHECK PASSED" in result.stdout
        assert (work / "data" / "ground_truth.csv").is_file()
        report = json.loads((work / "report" / "demo-interest-vs-views" / "report.json").read_text())
        assert report["winner"] in ("interest", "views"), report["winner"]
        assert (work / ".run" / "ab-demo" / "experiments.toml").is_file()
    finally:
        _drop_tables(dynamodb_endpoint, prefix)


def _drop_tables(endpoint: str, prefix: str) -> None:
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    for page in client.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            if name == prefix or name.startswith(prefix + "-"):
                client.delete_table(TableName=name)
