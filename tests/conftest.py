"""Fixtures shared across the test tree."""

from __future__ import annotations

import subprocess
import sys
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
