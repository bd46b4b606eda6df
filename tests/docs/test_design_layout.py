"""docs/design.md's package layout names every module of the package, under its own package.

The layout is where a new engineer looks for the home of a concept; a module missing from it is a
concept nobody can find (or a second home for one that is listed).
"""

from __future__ import annotations

import re

from tests.conftest import ROOT


def layout_sections() -> dict[str, str]:
    """Package ("" for the top level) → the layout text written under it."""
    text = (ROOT / "docs" / "design.md").read_text()
    block = text.split("Package layout", 1)[1].split("```", 2)[1]
    sections: dict[str, str] = {}
    current: str | None = None
    for line in block.splitlines():
        package = re.match(r"  (\w+)/\s", line)
        top = re.match(r"  (\w+\.py)\b", line)
        if package:
            current = package.group(1)
        elif top:
            current = ""
        elif not line.startswith("    "):
            current = None  # a line of another folder (recommender_tools/, docs/, ...)
            continue
        if current is not None:
            sections[current] = sections.get(current, "") + line + "\n"
    return sections


def test_every_module_of_the_package_is_in_the_design_layout_under_its_package():
    sections = layout_sections()
    missing = []
    for path in sorted((ROOT / "recommender").rglob("*.py")):
        parts = path.relative_to(ROOT / "recommender").parts
        if path.name == "__init__.py" and len(parts) > 1 or parts == ("__init__.py",):
            continue  # a package: its folder line stands for it
        package = parts[0] if len(parts) > 1 else ""  # a subpackage's modules are listed in its package's lines
        stem = re.escape(parts[-1].removesuffix(".py"))
        if not re.search(rf"(?<![\w/]){stem}(\.py)?(?![\w])", sections.get(package, "")):
            missing.append(str(path.relative_to(ROOT)))
    assert missing == [], "add them to docs/design.md's package layout: " + ", ".join(missing)
