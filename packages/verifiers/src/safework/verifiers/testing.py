"""Conformance kit for verifier plugins: subclass :class:`VerifierConformance` in your test suite.

    class TestMyVerifier(VerifierConformance):
        registered_name = "my-verifier"          # checked against the entry-point registry

        def make_verifier(self):
            return MyVerifier()

        def sample_items(self):
            return [VerifierItem("2+2?", "4", reference="4"), ...]

pytest collects the inherited ``test_*`` methods; each checks one clause of the verifier contract.
"""

from __future__ import annotations

from collections.abc import Sequence

from safework.core.types import VerifierScore
from safework.verifiers.base import Verifier, VerifierInputError, VerifierItem


class VerifierConformance:
    """The contract every verifier meets, as inheritable pytest tests."""

    #: Name under which the verifier is registered; None skips the registry check.
    registered_name: str | None = None

    def make_verifier(self) -> Verifier:
        raise NotImplementedError("return an instance of the verifier under test")

    def sample_items(self) -> Sequence[VerifierItem]:
        raise NotImplementedError("return a few representative items (at least two)")

    # -- the contract -----------------------------------------------------------------------------------
    def test_one_score_per_item_in_range(self) -> None:
        verifier, items = self.make_verifier(), list(self.sample_items())
        assert len(items) >= 2, "give the kit at least two sample items"
        scores = verifier(items)
        assert len(scores) == len(items)
        for score in scores:
            assert isinstance(score, VerifierScore)
            assert 0.0 <= score.score <= 1.0
            assert score.principle == verifier.principle
            assert score.label in verifier.labels, f"label {score.label!r} not in {verifier.labels}"

    def test_empty_batch(self) -> None:
        assert self.make_verifier()([]) == []

    def test_deterministic(self) -> None:
        verifier, items = self.make_verifier(), list(self.sample_items())
        first = [(s.label, round(s.score, 6)) for s in verifier(items)]
        second = [(s.label, round(s.score, 6)) for s in verifier(items)]
        assert first == second

    def test_batch_equals_singletons(self) -> None:
        verifier, items = self.make_verifier(), list(self.sample_items())
        batched = [(s.label, round(s.score, 4)) for s in verifier(items)]
        single = [(s.label, round(s.score, 4)) for item in items for s in verifier([item])]
        assert batched == single, "scores must not depend on what else is in the batch"

    def test_survives_odd_text(self) -> None:
        verifier = self.make_verifier()
        reference = "x" if verifier.requires_reference else None
        odd = [
            VerifierItem("", "", reference=reference),
            VerifierItem("¿Qué? 漢字 🙂", "\u200b\n\t", reference=reference),
            VerifierItem("long " * 2000, "long " * 2000, reference=reference),
        ]
        scores = verifier(odd)
        assert len(scores) == len(odd) and all(0.0 <= s.score <= 1.0 for s in scores)

    def test_reference_requirement_enforced(self) -> None:
        verifier = self.make_verifier()
        if not verifier.requires_reference:
            return
        try:
            verifier([VerifierItem("q", "a", reference=None)])
        except VerifierInputError as exc:
            assert "reference" in str(exc)
        else:
            raise AssertionError("a verifier that requires a reference must reject items without one")

    def test_registered_through_entry_point(self) -> None:
        if self.registered_name is None:
            return
        from safework.verifiers.registry import get_verifier

        verifier = get_verifier(self.registered_name)
        assert type(verifier) is type(self.make_verifier())
