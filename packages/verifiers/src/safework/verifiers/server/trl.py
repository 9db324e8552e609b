"""Use any verifier, reward recipe or remote reward server as a TRL reward function.

Calling convention followed: TRL's ``GRPOTrainer`` (and ``RLOOTrainer``) as of TRL 0.20+ call each entry
of ``reward_funcs`` as ``func(prompts=..., completions=..., completion_ids=..., **columns)`` where
``columns`` are the extra dataset columns (one list per column, aligned with ``prompts``) plus
``trainer_state`` (and, in later versions, ``log_extra`` / ``log_metric`` / ``environments``). It must
return one float per completion, or ``None`` to abstain for that sample; the function's ``__name__``
names the reward in the logs. Prompts and completions are plain strings, or — for conversational data
sets — lists of ``{"role", "content"}`` messages.

How a sample becomes a :class:`VerifierItem`: the prompt is the content of the last user message (the
question the completion answers), the response is the completion's assistant text; the ``reference``
column (name configurable) becomes the gold reference, ``task_label`` and the other scalar columns go into
``metadata``. A sample that cannot be scored (invalid for the verifier, verifier failed, server error)
gets ``None`` — never a made-up reward — so TRL leaves it out of that reward's mean.

Recipe rewards are composed by :func:`safework.verifiers.recipe.compose` whichever way the verifiers run:
a local :class:`Recipe` / :class:`RecipeScorer`, a :class:`RewardClient` in recipe mode (the server composes
with the same function and sends the breakdown), or a client over named verifiers (an ad-hoc weighted sum,
:meth:`LabelRecipe.weighted_sum`). So a local and a remote recipe reward are the same number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from safework.core.errors import ConfigError, RpcError
from safework.core.types import VerifierScore
from safework.verifiers.base import Verifier, VerifierInputError, VerifierItem
from safework.verifiers.failure import ScoreError
from safework.verifiers.recipe import (
    LabelRecipe,
    Recipe,
    RecipeScorer,
    RewardBreakdown,
    compose,
    task_label_of,
)
from safework.verifiers.server.client import RewardClient

log = logging.getLogger("safework.verifiers.trl")

# Keyword arguments TRL passes that are not dataset columns.
TRL_INTERNAL_KWARGS = frozenset(
    {"completion_ids", "trainer_state", "log_extra", "log_metric", "environments", "prompt_ids"}
)

ItemScorer = Callable[[Sequence[VerifierItem]], Sequence[float | VerifierScore | None]]


def message_text(content: Any) -> str:
    """Text of a message's ``content``: a string, or a list of parts (``{"type": "text", "text": ...}``)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = [part.get("text", "") for part in content if isinstance(part, Mapping)]
        return "".join(t for t in texts if isinstance(t, str))
    raise TypeError(f"message content must be a string or a list of parts, got {type(content).__name__}")


def prompt_text(prompt: str | Sequence[Mapping[str, Any]]) -> str:
    """The question: a plain prompt, or the last user message of a conversation."""
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if m.get("role") == "user"]
    chosen = users[-1] if users else (prompt[-1] if prompt else {"content": ""})
    return message_text(chosen.get("content", ""))


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """The answer: a plain completion, or the assistant messages of a conversational completion."""
    if isinstance(completion, str):
        return completion
    parts = [
        message_text(m.get("content", "")) for m in completion if m.get("role", "assistant") == "assistant"
    ]
    return "".join(parts)


def build_items(
    prompts: Sequence[Any], completions: Sequence[Any], columns: Mapping[str, Any], reference_column: str
) -> list[VerifierItem]:
    """One :class:`VerifierItem` per (prompt, completion), with the dataset columns attached."""
    if len(prompts) != len(completions):
        raise ValueError(f"got {len(prompts)} prompts for {len(completions)} completions; they must align")
    columns = {k: v for k, v in columns.items() if k not in TRL_INTERNAL_KWARGS}
    for name, values in columns.items():
        if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != len(prompts):
            raise ValueError(
                f"dataset column {name!r} must be a list with one value per completion ({len(prompts)}); "
                f"got {type(values).__name__}"
            )
    items = []
    for row, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        reference = columns[reference_column][row] if reference_column in columns else None
        metadata = {
            name: values[row]
            for name, values in columns.items()
            if name != reference_column and isinstance(values[row], str | int | float | bool)
        }
        items.append(
            VerifierItem(
                prompt_text(prompt),
                completion_text(completion),
                reference=None if reference is None else str(reference),
                metadata=metadata,
            )
        )
    return items


class RewardFunction:
    """A TRL reward function over a verifier, a recipe, an item scorer or a :class:`RewardClient`.

    - a :class:`Verifier`: its score;
    - a :class:`Recipe` or :class:`RecipeScorer`: the recipe reward of each sample's ``task_label``;
    - a client with no ``verifiers``: the server's recipe reward (same composition as the local recipe);
    - a client with ``verifiers``: Σ ``weights[v]`` · score over them (weight 1 where not given), no format
      term — composed by the same function, as an ad-hoc recipe;
    - any other callable: the numbers it returns.

    Recipe sources also give the full :class:`RewardBreakdown` per sample through :meth:`breakdowns`.
    """

    def __init__(
        self,
        source: Verifier | RewardClient | Recipe | RecipeScorer | ItemScorer,
        *,
        name: str | None = None,
        verifiers: Sequence[str] = (),
        weights: Mapping[str, float] | None = None,
        reference_column: str = "reference",
    ) -> None:
        if isinstance(source, Recipe):
            source = RecipeScorer(source)
        recipe_mode = isinstance(source, RecipeScorer) or (isinstance(source, RewardClient) and not verifiers)
        if weights and recipe_mode:
            raise ConfigError(
                "weights apply only to explicitly named remote verifiers; a recipe's weights come from the "
                "recipe — edit the recipe file, or pass verifiers=[...] with weights"
            )
        unknown = set(weights or {}) - set(verifiers)
        if unknown:
            raise ConfigError(f"weights name {sorted(unknown)}, which are not in verifiers={list(verifiers)}")
        self.source, self.verifiers = source, tuple(verifiers)
        self.weights = dict(weights or {})
        self.reference_column = reference_column
        self.__name__ = name or self._default_name()

    def _default_name(self) -> str:
        if isinstance(self.source, Verifier):
            return f"{self.source.principle}_reward"
        if isinstance(self.source, RewardClient | RecipeScorer):
            return "_".join(self.verifiers or ("recipe",)) + "_reward"
        return getattr(self.source, "__name__", type(self.source).__name__)

    def __repr__(self) -> str:
        return f"RewardFunction({self.__name__})"

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        items = build_items(prompts, completions, kwargs, self.reference_column)
        if not items:
            return []
        if isinstance(self.source, RewardClient | RecipeScorer):
            try:
                breakdowns = self._breakdowns(items)
            except RpcError as exc:
                log.warning(
                    "%s: the reward server failed (%s); %d samples abstain", self.__name__, exc, len(items)
                )
                return [None] * len(items)
            for index, breakdown in enumerate(breakdowns):
                if breakdown.error is not None:
                    log.warning("%s: sample %d abstains (%s)", self.__name__, index, breakdown.error.message)
            return [b.total for b in breakdowns]
        if isinstance(self.source, Verifier):
            return self._local(self.source, items)
        return [_as_float(value) for value in _checked(self.source(items), len(items), self.__name__)]

    def breakdowns(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[RewardBreakdown]:
        """The :class:`RewardBreakdown` behind each reward (recipe and client sources); a server that
        cannot be reached raises :class:`RpcError` here instead of abstaining."""
        return self._breakdowns(build_items(prompts, completions, kwargs, self.reference_column))

    def _breakdowns(self, items: list[VerifierItem]) -> list[RewardBreakdown]:
        if isinstance(self.source, RecipeScorer):
            return self.source.score(items)
        if not isinstance(self.source, RewardClient):
            raise TypeError(f"{self.__name__}: breakdowns need a recipe or a reward server as the source")
        if not self.verifiers:
            return self.source.rewards(items)
        adhoc = LabelRecipe.weighted_sum({n: self.weights.get(n, 1.0) for n in self.verifiers})
        out = []
        for item, result in zip(items, self.source.score(items, self.verifiers), strict=True):
            scores: dict[str, float | ScoreError] = {
                name: got.score if isinstance(got, VerifierScore) else got for name, got in result.items()
            }
            if result.error is not None and not result:  # the server ran none of them: say why
                scores = dict.fromkeys(self.verifiers, result.error)
            out.append(compose(task_label_of(item), adhoc, None, scores))
        return out

    def _local(self, verifier: Verifier, items: list[VerifierItem]) -> list[float | None]:
        valid: list[int] = []
        for index, item in enumerate(items):
            try:
                verifier.validate([item])
                valid.append(index)
            except VerifierInputError as exc:
                log.warning("%s: sample %d abstains: %s", self.__name__, index, exc)
        rewards: list[float | None] = [None] * len(items)
        if not valid:
            return rewards
        try:
            scores = verifier([items[i] for i in valid])
        except Exception as exc:  # the trainer goes on; the batch abstains for this reward
            log.warning(
                "%s: the verifier failed on %d samples (%s); they abstain", self.__name__, len(valid), exc
            )
            return rewards
        for index, score in zip(valid, scores, strict=True):
            rewards[index] = score.score
        return rewards


def _checked(values: Sequence[Any], expected: int, name: str) -> Sequence[Any]:
    if len(values) != expected:
        raise RuntimeError(f"reward source {name} returned {len(values)} values for {expected} samples")
    return values


def _as_float(value: float | VerifierScore | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, VerifierScore):
        return value.score
    return float(value)


def reward_function(
    source: Verifier | RewardClient | Recipe | RecipeScorer | ItemScorer | str,
    *,
    name: str | None = None,
    verifiers: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    reference_column: str = "reference",
    **verifier_options: Any,
) -> RewardFunction:
    """A TRL reward function; a string ``source`` is a registered verifier name, loaded in-process."""
    if isinstance(source, str):
        from safework.verifiers.registry import get_verifier

        source = get_verifier(source, **verifier_options)
    return RewardFunction(
        source, name=name, verifiers=verifiers, weights=weights, reference_column=reference_column
    )
