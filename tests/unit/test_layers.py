"""The house's one-way dependencies, checked on the source, with no exemption for any file.

    common <- providers                      (plain Python: no Django, no Celery)
    core <- market <- tasks <- deadletters <- monitoring <- stack

``LAYERS`` is that order, bottom first (market builds on core's settings without importing it);
``MAY_IMPORT`` names, for each package, the packages below it that it imports: exactly the arrows of
docs/TASK_QUEUE_ARCHITECTURE.md ("The code"). A package
imports only what its entry names (``test_imports_run_one_way``), an entry only names packages
below its own (``test_every_arrow_points_down``), and every arrow drawn is one the code has
(``test_every_arrow_is_used``), so the diagram can neither miss an import nor keep a stale one.
``stack``, the composition root, is the one package that may name every layer; none names it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[2] / "backend"
# Bottom first. fake_provider is the dev/test provider server beside providers (plain Python too).
LAYERS = ("common", "providers", "fake_provider", "core", "market", "tasks", "deadletters", "monitoring", "stack")
PLAIN = ("common", "providers", "fake_provider")
# package -> the backend packages it imports (the diagram's arrows, read "is imported by" upwards).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "providers": frozenset({"common"}),
    "fake_provider": frozenset({"common"}),
    "core": frozenset({"common"}),
    "market": frozenset({"common", "providers"}),  # providers.models: the Quote/Bar/Article records it stores
    "tasks": frozenset({"common", "core", "providers", "market"}),
    "deadletters": frozenset({"common", "core", "tasks"}),
    "monitoring": frozenset({"common", "core", "providers", "market", "tasks", "deadletters"}),
    "stack": frozenset({"common", "core", "tasks", "monitoring"}),
}
# What the plain packages may not import at all, besides the project's own Django layers.
FRAMEWORKS = ("django", "celery", "kombu", "django_celery_beat", "django_celery_results")


def imported_modules(path: Path) -> list[str]:
    """Every absolute module name ``path`` imports, at any depth of the file."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def imports_of(part: str) -> dict[str, list[str]]:
    """backend package -> ``file: module`` of each import of it from ``part`` (its own package left out)."""
    found: dict[str, list[str]] = {}
    for path in sorted((BACKEND / part).rglob("*.py")):
        for module in imported_modules(path):
            names = module.split(".")
            if names[0] == "backend" and len(names) > 1 and names[1] != part:
                found.setdefault(names[1], []).append(f"{path.relative_to(BACKEND.parent)}: {module}")
    return found


def framework_imports(part: str) -> list[str]:
    """``file: module`` of each Django/Celery/kombu import of ``part``."""
    return [
        f"{path.relative_to(BACKEND.parent)}: {module}"
        for path in sorted((BACKEND / part).rglob("*.py"))
        for module in imported_modules(path)
        if any(module == bad or module.startswith(bad + ".") for bad in FRAMEWORKS)
    ]


def test_every_package_has_a_layer() -> None:
    packages = {path.name for path in BACKEND.iterdir() if (path / "__init__.py").exists()}
    assert packages == set(LAYERS) == set(MAY_IMPORT)


@pytest.mark.parametrize("part", LAYERS)
def test_imports_run_one_way(part: str) -> None:
    undrawn = {target: files for target, files in imports_of(part).items() if target not in MAY_IMPORT[part]}
    assert undrawn == {}


@pytest.mark.parametrize("part", PLAIN)
def test_plain_packages_know_no_framework(part: str) -> None:
    assert framework_imports(part) == []


@pytest.mark.parametrize("part", LAYERS)
def test_every_arrow_points_down(part: str) -> None:
    assert MAY_IMPORT[part] <= set(LAYERS[: LAYERS.index(part)])


@pytest.mark.parametrize("part", LAYERS)
def test_every_arrow_is_used(part: str) -> None:
    assert MAY_IMPORT[part] <= set(imports_of(part))


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    source = tmp_path / "bad.py"
    source.write_text("import django\nfrom backend.tasks.models import DispatchRun\nfrom . import sibling\n")
    assert imported_modules(source) == ["django", "backend.tasks.models"]
