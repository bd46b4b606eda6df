"""No two modules of the package import each other (not even for type hints only), and none imports the tooling.

A cycle makes the import order matter and the modules impossible to read or test apart; the
usual mend is a third module both import (``evaluation/task_split.py`` for the runner and the
item recommenders).  Imports inside functions are left out: they run late, by design.
"""

from __future__ import annotations

import ast
import graphlib

from tests.conftest import ROOT


def module_imports() -> dict[str, set[str]]:
    """Module → the package's modules it imports at module level (``if TYPE_CHECKING:`` blocks included)."""
    files = {}
    for path in (ROOT / "recommender").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def targets(body: list[ast.stmt]):
        for node in body:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("recommender"):
                for alias in node.names:  # ``from pkg import module`` names the module itself
                    yield f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in files else node.module
            elif isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names if alias.name.startswith("recommender"))
            elif isinstance(node, (ast.If, ast.Try)):
                yield from targets(node.body)

    return {name: {t for t in targets(ast.parse(path.read_text()).body) if t in files and t != name}
            for name, path in files.items()}


def test_the_package_has_no_import_cycle():
    graph = module_imports()
    assert "recommender.evaluation.task_split" in graph["recommender.evaluation.references"]  # the walk sees imports
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_the_product_never_imports_the_tooling():
    """``recommender_tools`` (synthetic data, the A/B demo) stays off the runtime path, lazy imports included."""
    offenders = []
    for path in (ROOT / "recommender").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == "recommender_tools"]
    assert offenders == []
