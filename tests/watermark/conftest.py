"""Watermark fixtures: a fixed key, the embedded tokenizer, and a tiny random model that shares its ids."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from safework.core import plugins
from safework.watermark.keys import WatermarkKey


@pytest.fixture(autouse=True)
def _fresh_plugin_manager() -> Iterator[None]:
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


@pytest.fixture
def key() -> WatermarkKey:
    return WatermarkKey(bytes(range(16)))


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    from safework.core.models import load_tokenizer

    return load_tokenizer("default")


@pytest.fixture(scope="session")
def tiny(tokenizer: Any) -> Any:
    from safework.core.models import tiny_loaded

    return tiny_loaded(tokenizer)
