"""Each package builds into its own wheel, with its own version, entry point and (for core) native sources."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["verifiers", "rl", "watermark"])
def test_plugin_packages_build_alone_with_their_entry_point(
    package: str, tmp_path: Path, build_wheel: Callable[[str, Path], zipfile.ZipFile]
) -> None:
    wheel = build_wheel(package, tmp_path)
    names = wheel.namelist()
    assert f"safework/{package}/plugin.py" in names
    if package == "verifiers":  # the default reward recipe is package data
        assert "safework/verifiers/recipes/default.toml" in names
    assert "safework/__init__.py" not in names, "safework must stay an implicit namespace package"
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert f"{package} = safework.{package}.plugin" in wheel.read(entry_points).decode()


def test_core_wheel_ships_native_sources_and_cli(
    tmp_path: Path, build_wheel: Callable[[str, Path], zipfile.ZipFile]
) -> None:
    wheel = build_wheel("core", tmp_path)
    names = set(wheel.namelist())
    shipped = {n.removeprefix("safework/core/csrc/") for n in names if n.startswith("safework/core/csrc/")}
    in_repo = {str(p.relative_to(REPO / "csrc")) for p in (REPO / "csrc").rglob("*") if p.is_file()}
    assert in_repo and shipped == in_repo
    assert "safework/__init__.py" not in names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "safework = safework.core.cli:main" in wheel.read(entry_points).decode()
