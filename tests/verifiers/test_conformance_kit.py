"""The conformance kit, run against a real third-party verifier installed through its entry point."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from safework.core import plugins
from safework.verifiers import Verifier, VerifierItem
from safework.verifiers.testing import VerifierConformance


@pytest.fixture(autouse=True)
def _sample_plugin_installed(sample_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(sample_site))
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


class TestSampleLengthVerifier(VerifierConformance):
    registered_name = "sample-length"

    def make_verifier(self) -> Verifier:
        from safework_sample_plugin import LengthVerifier

        return LengthVerifier()

    def sample_items(self) -> Sequence[VerifierItem]:
        return [VerifierItem("Say hi", "hi"), VerifierItem("Describe the sea", "The sea is wide. " * 6)]


class _Broken(Verifier):
    principle = "broken"
    labels = ("ok",)

    def score(self, items: Sequence[VerifierItem]) -> list:  # type: ignore[type-arg]
        return []  # forgets the items


def test_the_kit_catches_a_verifier_that_drops_items() -> None:
    class Kit(VerifierConformance):
        def make_verifier(self) -> Verifier:
            return _Broken()

        def sample_items(self) -> Sequence[VerifierItem]:
            return [VerifierItem("a", "b"), VerifierItem("c", "d")]

    with pytest.raises(RuntimeError, match="returned 0 scores for 2 items"):
        Kit().test_one_score_per_item_in_range()
