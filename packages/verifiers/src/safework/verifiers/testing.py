"""Conformance kit for verifier plugins: subclass :class:`VerifierConformance` in your test suite.

    class TestMyVerifier(VerifierConformance):
        registered_name = "my-verifier"          # checked against the entry-point registry

        def make_verifier(self):
            return MyVerifier()

        def sample_items(self):
            return [VerifierItem("2+2?", "4", reference="4"), ...]

pytest collects the inherited ``test_*`` methods; each checks one clause of the verifier contract, and a
clause that does not apply to the verifier under test is reported as *skipped* with the reason, never as
passed. The checks:

- ``test_declares_principle_and_labels`` — ``principle`` is a non-empty string and ``labels`` a non-empty
  tuple of distinct non-empty strings (what ListVerifiers and the recipes read);
- ``test_one_score_per_item_in_range`` — at least two sample items; one :class:`VerifierScore` per item,
  score in [0, 1], the verifier's principle, a label from its ``labels``;
- ``test_empty_batch`` — an empty batch scores to ``[]``;
- ``test_deterministic`` — the same batch twice gives the same labels and scores (to 1e-6);
- ``test_batch_equals_singletons`` — scoring the batch equals scoring each item alone (to 1e-4): a
  score must not depend on what else the reward server batched with it;
- ``test_survives_odd_text`` — empty, whitespace-only, mixed-script/emoji, 2,000-word, truncated
  (``<think>`` never closed) and tag-only responses each get one in-range score;
- ``test_reference_requirement`` — a verifier with ``requires_reference`` rejects an item without one with
  a :class:`VerifierInputError` that mentions "reference"; any other verifier scores the sample items
  with their references removed;
- ``test_registered_through_entry_point`` — ``get_verifier(registered_name)`` builds an instance of the same
  class (skipped when ``registered_name`` is None);
- ``test_label_probabilities_are_a_distribution`` — where ``raw["probabilities"]`` is given (the reward
  server sends it as ``label_probabilities``), it maps exactly the labels to finite values in [0, 1]
  summing to 1, and the label has the highest probability (skipped when no sample reports them);
- ``test_scores_survive_the_wire`` — each score goes through the reward server's proto conversion and
  back with the same principle, label, score and categories (raw must be JSON-encodable);
- ``test_scores_reasoning_prefixes`` — for a verifier that supports step scoring (``supports_steps``, the
  default), the server's step items (``answer_format.thinking_prefix`` of the sample responses as steps,
  unfinished and final) each get one in-range score (skipped when ``supports_steps`` is False).

pytest is imported inside the checks, so importing this module costs nothing outside a test run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace

from safework.core.answer_format import thinking_prefix
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

    def _items(self) -> list[VerifierItem]:
        items = list(self.sample_items())
        assert len(items) >= 2, "give the kit at least two sample items (sample_items)"
        return items

    def _check_in_range(self, verifier: Verifier, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        scores = verifier(items)
        assert len(scores) == len(items)
        for score in scores:
            assert isinstance(score, VerifierScore)
            assert 0.0 <= score.score <= 1.0
            assert score.principle == verifier.principle
            assert score.label in verifier.labels, f"label {score.label!r} not in {verifier.labels}"
        return scores

    # -- the contract -----------------------------------------------------------------------------------
    def test_declares_principle_and_labels(self) -> None:
        verifier = self.make_verifier()
        assert isinstance(verifier.principle, str) and verifier.principle.strip(), "set a non-empty principle"
        labels = verifier.labels
        assert isinstance(labels, tuple) and labels, "labels must be a non-empty tuple of strings"
        assert all(isinstance(label, str) and label for label in labels), f"bad label in {labels}"
        assert len(set(labels)) == len(labels), f"labels repeat: {labels}"

    def test_one_score_per_item_in_range(self) -> None:
        verifier, items = self.make_verifier(), self._items()
        self._check_in_range(verifier, items)

    def test_empty_batch(self) -> None:
        assert self.make_verifier()([]) == []

    def test_deterministic(self) -> None:
        verifier, items = self.make_verifier(), self._items()
        first = [(s.label, round(s.score, 6)) for s in verifier(items)]
        second = [(s.label, round(s.score, 6)) for s in verifier(items)]
        assert first == second

    def test_batch_equals_singletons(self) -> None:
        verifier, items = self.make_verifier(), self._items()
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
            VerifierItem("What is 2+2?", "<think>Two and two make", reference=reference),  # cut off
            VerifierItem("What is 2+2?", "<think></think>", reference=reference),
        ]
        self._check_in_range(verifier, odd)

    def test_reference_requirement(self) -> None:
        import pytest

        verifier = self.make_verifier()
        if verifier.requires_reference:
            with pytest.raises(VerifierInputError, match="reference"):
                verifier([VerifierItem("q", "a", reference=None)])
        else:
            stripped = [replace(item, reference=None) for item in self._items()]
            self._check_in_range(verifier, stripped)

    def test_registered_through_entry_point(self) -> None:
        import pytest

        if self.registered_name is None:
            pytest.skip("registered_name is None: set it to check the entry-point registration")
        from safework.verifiers.registry import get_verifier

        verifier = get_verifier(self.registered_name)
        assert type(verifier) is type(self.make_verifier())

    def test_label_probabilities_are_a_distribution(self) -> None:
        import pytest

        verifier, items = self.make_verifier(), self._items()
        reported = [s for s in verifier(items) if isinstance(s.raw, dict) and "probabilities" in s.raw]
        if not reported:
            pytest.skip(f"{type(verifier).__name__} reports no raw['probabilities'] for the sample items")
        for score in reported:
            probs = score.raw["probabilities"]
            assert set(probs) == set(verifier.labels), f"probabilities name {sorted(probs)}"
            assert all(
                isinstance(p, float | int) and math.isfinite(p) and 0.0 <= p <= 1.0 for p in probs.values()
            )
            assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
            assert probs[score.label] >= max(probs.values()) - 1e-6, "the label must be the most probable"

    def test_scores_survive_the_wire(self) -> None:
        from safework.verifiers.server.convert import result_from_wire, score_to_wire

        verifier, items = self.make_verifier(), self._items()
        for score in verifier(items):
            if score.raw is not None:
                json.dumps(score.raw, default=str)
            back = result_from_wire(score_to_wire("kit", score))
            assert isinstance(back, VerifierScore), back
            assert (back.principle, back.label, back.score, back.categories) == (
                score.principle,
                score.label,
                score.score,
                score.categories,
            )

    def test_scores_reasoning_prefixes(self) -> None:
        import pytest

        verifier = self.make_verifier()
        if not getattr(verifier, "supports_steps", True):
            pytest.skip(f"{type(verifier).__name__} sets supports_steps = False: no step scoring")
        items = self._items()
        steps = [item.response or "step" for item in items]
        prefixes = [
            replace(item, response=thinking_prefix(steps[: index + 1], final=final))
            for index, item in enumerate(items)
            for final in (False, True)
        ]
        self._check_in_range(verifier, prefixes)
