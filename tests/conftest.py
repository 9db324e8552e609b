"""Fixtures shared across the test tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "plugins" / "safework-sample-plugin"


@pytest.fixture(scope="session")
def sample_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample plugin really installed by pip into its own target folder (the venv stays untouched)."""
    target = tmp_path_factory.mktemp("sample-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(SAMPLE),
        ],
        check=True,
    )
    assert list(target.glob("safework_sample_plugin-0.3.1.dist-info"))
    return target


def _build_wheel(package: str, out: Path) -> zipfile.ZipFile:
    """``packages/<package>`` built by pip into a wheel in ``out`` (no dependencies, no build isolation)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO / "packages" / package),
        ],
        check=True,
    )
    (wheel,) = out.glob(f"safework_{package}-*.whl")
    return zipfile.ZipFile(wheel)


@pytest.fixture(scope="session")
def build_wheel() -> Callable[[str, Path], zipfile.ZipFile]:
    """``build_wheel(package, out)``: a package of this repository built into a wheel, opened."""
    return _build_wheel
