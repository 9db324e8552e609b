"""The one-way package graph of DESIGN.md §2: core <- verifiers <- rl, core <- watermark.

Cooperation against the arrows goes through plugin hooks, never imports. The checker reads source with
`ast`, so a lazy import inside a function counts as much as a top-level one.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# package -> the safework packages it may import (itself included)
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "verifiers": {"core", "verifiers"},
    "rl": {"core", "verifiers", "rl"},
    "watermark": {"core", "watermark"},
}


def imported_safework_packages(source: str) -> set[str]:
    """Names X of every `safework.X` imported by the source."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            if node.module == "safework":
                modules = [f"safework.{alias.name}" for alias in node.names]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "safework" and len(parts) > 1:
                found.add(parts[1])
    return found


def violations(packages_root: Path) -> list[str]:
    """`file: imports safework.X` for every import against the arrows under packages_root."""
    problems = []
    for package, allowed in ALLOWED.items():
        for path in sorted((packages_root / package / "src").rglob("*.py")):
            bad = imported_safework_packages(path.read_text()) - allowed
            problems += [
                f"{path.relative_to(packages_root)}: imports safework.{name}" for name in sorted(bad)
            ]
    return problems


def test_no_reverse_imports() -> None:
    assert violations(REPO / "packages") == []


def test_declared_dependencies_follow_the_arrows() -> None:
    for package, allowed in ALLOWED.items():
        meta = tomllib.loads((REPO / "packages" / package / "pyproject.toml").read_text())
        declared = {dep.split(">")[0].split("=")[0].strip() for dep in meta["project"]["dependencies"]}
        safework_deps = {d.removeprefix("safework-") for d in declared if d.startswith("safework-")}
        assert safework_deps <= allowed - {package}, f"{package} declares {safework_deps}"


@pytest.mark.parametrize(
    ("package", "line"),
    [
        ("core", "from safework.watermark import plugin"),
        ("watermark", "import safework.verifiers.plugin"),
        ("verifiers", "def f():\n    from safework.rl import plugin\n"),
        ("watermark", "from safework import rl"),
    ],
)
def test_checker_catches_a_reverse_import(tmp_path: Path, package: str, line: str) -> None:
    for name in ALLOWED:
        (tmp_path / name / "src" / "safework" / name).mkdir(parents=True)
    (tmp_path / package / "src" / "safework" / package / "bad.py").write_text(line + "\n")
    found = violations(tmp_path)
    assert len(found) == 1 and "bad.py: imports safework." in found[0]
