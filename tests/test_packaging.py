"""What ``pip install .[api]`` brings and imports, and that the pinned requirements match pyproject.

The service must start from ``pip install .[api]`` without TensorFlow, faiss, Dask, implicit or
numba.  Two checks, both offline: the api extra's dependency closure (from the installed
packages' own metadata) holds none of them, and what ``create_app()`` really imports is inside
that closure (so an import of pandas or TensorFlow creeping into the API fails here, not in a
fresh deployment).  The pins of ``make install`` are checked against the declared ranges.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

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
