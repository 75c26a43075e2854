"""The house's one-way dependencies, checked on the source: core <- market <- tasks <- deadletters <- monitoring.

``backend/providers``, ``backend/common`` and ``backend/fake_provider`` are plain Python (no Django,
no Celery, no other part of the project but ``backend.common``); market never imports tasks or
monitoring; tasks never import monitoring; core imports none of them. The process entry points in
core (``urls.py``, ``wsgi.py`` and the Celery app's worker hooks in ``celery.py``) are the composition
roots that wire every part into a process.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[2] / "backend"
PLAIN = ("providers", "common", "fake_provider")
# package -> module prefixes it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    **{
        part: (
            "django",
            "celery",
            "kombu",
            "django_celery_beat",
            "django_celery_results",
            "backend.core",
            "backend.market",
            "backend.tasks",
            "backend.deadletters",
            "backend.monitoring",
        )
        for part in PLAIN
    },
    "core": ("backend.market", "backend.tasks", "backend.deadletters", "backend.monitoring"),
    "market": ("backend.tasks", "backend.deadletters", "backend.monitoring"),
    "tasks": ("backend.deadletters", "backend.monitoring"),
    "deadletters": ("backend.monitoring",),
}
COMPOSITION_ROOTS = {BACKEND / "core" / name for name in ("urls.py", "wsgi.py", "celery.py")}


def imported_modules(path: Path) -> list[str]:
    """Every absolute module name ``path`` imports, at any depth of the file."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def violations(part: str) -> list[str]:
    """``file: module`` for each import of ``part`` that breaks its rule."""
    found = []
    for path in sorted((BACKEND / part).rglob("*.py")):
        if path in COMPOSITION_ROOTS:
            continue
        for module in imported_modules(path):
            if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN[part]):
                found.append(f"{path.relative_to(BACKEND.parent)}: {module}")
    return found


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_imports_run_one_way(part: str) -> None:
    assert violations(part) == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    source = tmp_path / "bad.py"
    source.write_text("import django\nfrom backend.tasks.runs import DispatchRun\nfrom . import sibling\n")
    assert imported_modules(source) == ["django", "backend.tasks.runs"]
