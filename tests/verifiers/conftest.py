"""Verifier tests see the built-ins exactly as users do: registered by the package's own plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from safework.core import plugins


@pytest.fixture(autouse=True)
def _fresh_plugin_manager() -> Iterator[None]:
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()
