"""The reward recipe (spec §4): per task label, r = w_f · r_format + Σ w · component.

A recipe is a TOML file::

    [verifiers.format-boxed]            # optional: named verifier instances with options
    factory = "format"                  # registry name (defaults to the table's own name)
    options = { require_boxed = true }

    [labels.knowledge]
    components = [
      { verifier = "knowledge", weight = 1.0 },
      { verifier = "normal", weight = 1.0, optional = true },   # not installed → contributes 1.0
    ]

    [labels.gsm8k_rule]                 # the spec's override: 0.9·accuracy + 0.1·format
    format = "format-boxed"
    format_weight = 0.1
    components = [{ verifier = "math-answer", weight = 0.9 }]

Semantics (spec §4): the format reward is always added (weight 1 unless ``format_weight`` says otherwise); a
label without a recipe gets the format reward only (logged once per label); a component whose verifier is
not installed contributes 1.0 — allowed only when marked ``optional``, else loading the recipe fails.

:func:`compose` is the only place a reward total is computed: the in-process :class:`RecipeScorer`, the
reward server, the TRL adapter and ``safework verifiers score --recipe`` all run their verifiers their own
way (in-process, dynamically batched, remote) and hand the scores to it, so they cannot disagree.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safework.core.errors import ConfigError
from safework.verifiers.base import Verifier, VerifierInputError, VerifierItem
from safework.verifiers.failure import ScoreError, invalid_item, verifier_raised

if TYPE_CHECKING:
    import torch

log = logging.getLogger("safework.verifiers.recipe")

DEFAULT_FORMAT = "format"
# The paper's recipe table (spec §4), shipped with the package so the CLI and the reward server share it.
DEFAULT_RECIPE_PATH = Path(__file__).with_name("recipes") / "default.toml"
MISSING_COMPONENT_SCORE = 1.0  # spec §4: a recipe component whose reward model is not loaded


@dataclass(frozen=True)
class Component:
    verifier: str
    weight: float
    optional: bool = False


@dataclass(frozen=True)
class LabelRecipe:
    label: str
    components: tuple[Component, ...]
    format_verifier: str = DEFAULT_FORMAT
    format_weight: float = 1.0

    @classmethod
    def weighted_sum(cls, weights: Mapping[str, float], label: str = "") -> LabelRecipe:
        """Σ weight · score over named verifiers with no format term: an ad-hoc reward (e.g. the TRL
        adapter over explicitly named remote verifiers) composed by the same :func:`compose`."""
        return cls(label, tuple(Component(n, float(w)) for n, w in weights.items()), format_weight=0.0)


@dataclass(frozen=True)
class VerifierSpec:
    """A named verifier instance: registry ``factory`` called with ``options``."""

    name: str
    factory: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RewardBreakdown:
    """One item's reward: total = format_weight · format_score + Σ weights[v] · scores[v].

    ``scores`` are the unweighted verifier scores in [0, 1] (1.0 for a component whose verifier is not
    loaded, listed in ``missing``); ``weights`` has every component of the label's recipe; ``known_label``
    is False when the label had no recipe. When a verifier failed, ``total`` is None and ``error`` says
    why (``scores`` then holds only what did score): a partial sum is never passed off as a reward.
    ``format_score`` is None when the format verifier failed or the format weight is 0 (not run)."""

    task_label: str
    total: float | None
    format_score: float | None
    format_weight: float
    scores: Mapping[str, float]
    weights: Mapping[str, float]
    missing: tuple[str, ...] = ()
    known_label: bool = True
    error: ScoreError | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_label": self.task_label,
            "total": self.total,
            "format": {"score": self.format_score, "weight": self.format_weight},
            "components": {
                name: {"score": self.scores.get(name), "weight": weight}
                for name, weight in self.weights.items()
            },
            "missing": list(self.missing),
            "known_label": self.known_label,
            "error": None if self.error is None else {"code": self.error.code, "message": self.error.message},
        }


def compose(
    task_label: str,
    recipe: LabelRecipe | None,
    format_score: float | ScoreError | None,
    component_scores: Mapping[str, float | ScoreError],
) -> RewardBreakdown:
    """The reward of one item from its verifiers' scores (spec §4); pure — it runs no verifier.

    ``recipe`` None means the label has no recipe: the format reward alone, weight 1. ``component_scores``
    maps a verifier name to its unweighted score or the :class:`ScoreError` that kept it from scoring; a
    component absent from it is *not installed*: optional → counts ``MISSING_COMPONENT_SCORE`` and is
    listed in ``missing``; required → the item fails. Any failure (format included) makes ``total`` None
    with ``error`` naming every failed verifier. ``format_score`` may be None only when the format weight
    is 0 (the format verifier need not run then).
    """
    format_weight = recipe.format_weight if recipe else 1.0
    format_name = recipe.format_verifier if recipe else DEFAULT_FORMAT
    failures: list[tuple[str, ScoreError]] = []
    fmt: float | None = None
    if isinstance(format_score, ScoreError):
        failures.append((format_name, format_score))
    elif format_score is not None:
        fmt = float(format_score)
    elif format_weight != 0:
        raise ValueError(
            f"compose({task_label!r}): the format weight is {format_weight:g}, so a format score is needed; "
            "pass the format verifier's score or its ScoreError"
        )
    scores: dict[str, float] = {}
    weights: dict[str, float] = {}
    missing: list[str] = []
    for comp in recipe.components if recipe else ():
        weights[comp.verifier] = comp.weight
        got = component_scores.get(comp.verifier)
        if isinstance(got, ScoreError):
            failures.append((comp.verifier, got))
        elif got is not None:
            scores[comp.verifier] = float(got)
        elif comp.optional:
            scores[comp.verifier] = MISSING_COMPONENT_SCORE
            missing.append(comp.verifier)
        else:
            failures.append(
                (
                    comp.verifier,
                    ScoreError(
                        "VERIFIER_NOT_FOUND",
                        f"the required verifier {comp.verifier!r} is not installed here; install (or serve) "
                        "it, or mark the component `optional = true` in the recipe",
                    ),
                )
            )
    error = None
    total: float | None = None
    if failures:
        reasons = "; ".join(f"{name}: {err.message}" for name, err in failures)
        error = ScoreError(
            failures[0][1].code,
            f"no reward for task label {task_label!r}: {reasons}",
            all(err.retryable for _, err in failures),
        )
    else:
        total = (format_weight * fmt if fmt is not None else 0.0) + sum(
            weights[name] * scores[name] for name in scores
        )
    return RewardBreakdown(
        task_label, total, fmt, format_weight, scores, weights, tuple(missing), recipe is not None, error
    )


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: weight must be a finite number (got {value!r})")
    return float(value)


class Recipe:
    """Label → components table, validated at load time against the installed verifiers."""

    def __init__(
        self,
        labels: Mapping[str, LabelRecipe],
        verifiers: Mapping[str, VerifierSpec] | None = None,
        *,
        available: Sequence[str] | None = None,
        source: str = "<recipe>",
    ) -> None:
        self.labels = dict(labels)
        self.verifiers = dict(verifiers or {})
        self.source = source
        if available is None:
            from safework.verifiers.registry import available_verifiers

            available = list(available_verifiers())
        self.available = frozenset(available)
        self._validate()

    # -- loading ----------------------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, available: Sequence[str] | None = None, source: str = "<recipe>"
    ) -> Recipe:
        unknown = set(data) - {"labels", "verifiers"}
        if unknown:
            raise ConfigError(
                f"{source}: unknown top-level keys {sorted(unknown)}; use [labels.*] and [verifiers.*]"
            )
        specs: dict[str, VerifierSpec] = {}
        for name, table in dict(data.get("verifiers", {})).items():
            if not isinstance(table, Mapping) or set(table) - {"factory", "options"}:
                raise ConfigError(f"{source}: [verifiers.{name}] takes only `factory` and `options`")
            options = table.get("options", {})
            if not isinstance(options, Mapping):
                raise ConfigError(f"{source}: [verifiers.{name}].options must be a table")
            specs[name] = VerifierSpec(name, str(table.get("factory", name)), dict(options))
        labels: dict[str, LabelRecipe] = {}
        for label, table in dict(data.get("labels", {})).items():
            where = f"{source}: [labels.{label}]"
            if not isinstance(table, Mapping) or set(table) - {"components", "format", "format_weight"}:
                raise ConfigError(f"{where} takes only `components`, `format` and `format_weight`")
            components = []
            for index, comp in enumerate(table.get("components", [])):
                if (
                    not isinstance(comp, Mapping)
                    or "verifier" not in comp
                    or set(comp) - {"verifier", "weight", "optional"}
                ):
                    raise ConfigError(
                        f'{where} component {index}: write {{ verifier = "name", weight = 1.0 }}'
                    )
                components.append(
                    Component(
                        str(comp["verifier"]),
                        _weight(comp.get("weight", 1.0), f"{where} component {index}"),
                        bool(comp.get("optional", False)),
                    )
                )
            names = [c.verifier for c in components]
            if len(set(names)) != len(names):
                raise ConfigError(f"{where}: a verifier appears twice; merge the weights into one component")
            labels[label] = LabelRecipe(
                label,
                tuple(components),
                str(table.get("format", DEFAULT_FORMAT)),
                _weight(table.get("format_weight", 1.0), f"{where} format_weight"),
            )
        return cls(labels, specs, available=available, source=source)

    @classmethod
    def loads(cls, text: str, *, available: Sequence[str] | None = None, source: str = "<string>") -> Recipe:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source} is not valid TOML: {exc}") from exc
        return cls.from_dict(data, available=available, source=source)

    @classmethod
    def load(cls, path: str | Path, *, available: Sequence[str] | None = None) -> Recipe:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read recipe {path}: {exc}; pass an existing TOML file") from exc
        return cls.loads(text, available=available, source=str(path))

    def _factory(self, name: str) -> str:
        spec = self.verifiers.get(name)
        return spec.factory if spec else name

    def _validate(self) -> None:
        for spec in self.verifiers.values():
            if spec.factory not in self.available:
                raise ConfigError(
                    f"{self.source}: [verifiers.{spec.name}] uses unknown verifier {spec.factory!r} "
                    f"(installed: {', '.join(sorted(self.available)) or 'none'})"
                )
        for recipe in self.labels.values():
            if self._factory(recipe.format_verifier) not in self.available:
                raise ConfigError(
                    f"{self.source}: [labels.{recipe.label}] format verifier {recipe.format_verifier!r} "
                    "is not installed; name an installed one in `format = ...`"
                )
            for comp in recipe.components:
                if not comp.optional and self._factory(comp.verifier) not in self.available:
                    raise ConfigError(
                        f"{self.source}: [labels.{recipe.label}] uses unknown verifier {comp.verifier!r} "
                        f"(installed: {', '.join(sorted(self.available)) or 'none'}); install it, fix the "
                        "name, or mark the component `optional = true` (it then contributes 1.0)"
                    )

    # -- introspection ----------------------------------------------------------------------------------
    def is_loaded(self, name: str) -> bool:
        return self._factory(name) in self.available

    def verifier_names(self) -> list[str]:
        """Every component verifier the recipe names (format verifiers excluded), in first-use order."""
        seen: dict[str, None] = {}
        for recipe in self.labels.values():
            for comp in recipe.components:
                seen.setdefault(comp.verifier, None)
        return list(seen)

    def format_names(self) -> list[str]:
        seen: dict[str, None] = {DEFAULT_FORMAT: None}
        for recipe in self.labels.values():
            seen.setdefault(recipe.format_verifier, None)
        return list(seen)

    def make_verifier(self, name: str) -> Verifier:
        from safework.verifiers.registry import get_verifier

        spec = self.verifiers.get(name)
        return get_verifier(spec.factory, **spec.options) if spec else get_verifier(name)

    # -- arrays for the fused kernel --------------------------------------------------------------------
    def weight_matrix(self, task_labels: Sequence[str], verifier_names: Sequence[str]) -> torch.Tensor:
        """(N, V) float32: W[i, v] = weight of verifier v in item i's recipe (0 when absent or unknown label).

        total_i = format_rewards_i + Σ_v W[i, v] · S[i, v], with S[i, v] = 1.0 for a verifier that is not
        loaded (see :meth:`is_loaded`)."""
        import torch

        column = {name: j for j, name in enumerate(verifier_names)}
        weights = torch.zeros((len(task_labels), len(verifier_names)), dtype=torch.float32)
        for i, label in enumerate(task_labels):
            recipe = self.labels.get(label)
            for comp in recipe.components if recipe else ():
                if comp.verifier not in column:
                    raise ConfigError(
                        f"weight_matrix: label {label!r} needs verifier {comp.verifier!r}; "
                        "add it to verifier_names"
                    )
                weights[i, column[comp.verifier]] = comp.weight
        return weights

    def format_weights(self, task_labels: Sequence[str]) -> torch.Tensor:
        """(N,) float32 weight of the format term per item (1 for unknown labels)."""
        import torch

        return torch.tensor(
            [self.labels[lb].format_weight if lb in self.labels else 1.0 for lb in task_labels],
            dtype=torch.float32,
        )

    def format_verifier_for(self, label: str) -> str:
        recipe = self.labels.get(label)
        return recipe.format_verifier if recipe else DEFAULT_FORMAT

    # -- composition --------------------------------------------------------------------------------------
    def needs(self, label: str, *, components: bool = True) -> tuple[str, ...]:
        """The verifiers an item with this task label runs: its format verifier (unless its weight is 0),
        then its components (recipe names; aliases stay aliases)."""
        recipe = self.labels.get(label)
        names = [] if recipe is not None and recipe.format_weight == 0 else [self.format_verifier_for(label)]
        for comp in recipe.components if (recipe and components) else ():
            if comp.verifier not in names:
                names.append(comp.verifier)
        return tuple(names)

    def compose(self, label: str, scores: Mapping[str, float | ScoreError]) -> RewardBreakdown:
        """:func:`compose` for an item with this task label; ``scores`` maps each verifier of
        :meth:`needs` that was installed to its score or failure (absent: not installed)."""
        recipe = self.labels.get(label)
        fmt: float | ScoreError | None = None
        if recipe is None or recipe.format_weight != 0:
            name = self.format_verifier_for(label)
            fmt = scores.get(name)
            if fmt is None:
                fmt = ScoreError(
                    "VERIFIER_NOT_FOUND",
                    f"the format verifier {name!r} is not installed here; the format reward is mandatory",
                )
        return compose(label, recipe, fmt, scores)


def task_label_of(item: VerifierItem) -> str:
    """The item's task label: ``metadata["task_label"]`` (the RPC field's name) or ``metadata["task"]``."""
    value = item.metadata.get("task_label", item.metadata.get("task", ""))
    return str(value) if value is not None else ""


class RecipeScorer:
    """Scores items with a recipe in-process: each needed verifier runs once over the items that need it.

    A verifier failure stays per item, as on the reward server: an item it cannot take is INVALID_ITEM, a
    batch that raises is retried item by item so only the item that breaks it fails (VERIFIER_FAILED)."""

    def __init__(self, recipe: Recipe, verifiers: Mapping[str, Verifier] | None = None) -> None:
        self.recipe = recipe
        self._instances: dict[str, Verifier] = dict(verifiers or {})
        self._warned_labels: set[str] = set()
        self._warned_missing: set[str] = set()

    def verifier(self, name: str) -> Verifier | None:
        """The instance for ``name``; None (logged once) when it is not installed."""
        if name in self._instances:
            return self._instances[name]
        if not self.recipe.is_loaded(name):
            if name not in self._warned_missing:
                self._warned_missing.add(name)
                log.warning(
                    "verifier %r is not installed; its recipe components contribute %s",
                    name,
                    MISSING_COMPONENT_SCORE,
                )
            return None
        self._instances[name] = self.recipe.make_verifier(name)
        return self._instances[name]

    def _labels(self, items: Sequence[VerifierItem], task_labels: Sequence[str] | None) -> list[str]:
        labels = [task_label_of(item) for item in items] if task_labels is None else list(task_labels)
        if len(labels) != len(items):
            raise ConfigError(f"got {len(labels)} task labels for {len(items)} items; pass one per item")
        for label in labels:
            if label not in self.recipe.labels and label not in self._warned_labels:
                self._warned_labels.add(label)
                log.warning(
                    "task label %r has no recipe in %s; scoring the format reward only",
                    label,
                    self.recipe.source,
                )
        return labels

    def _run(
        self, name: str, items: Sequence[VerifierItem], indices: Sequence[int]
    ) -> dict[int, float | ScoreError] | None:
        """Item index → score or failure for the items at ``indices``; None when ``name`` is not installed."""
        verifier = self.verifier(name)
        if verifier is None:
            return None
        out: dict[int, float | ScoreError] = {}
        valid = []
        for i in indices:
            try:
                verifier.validate([items[i]])
                valid.append(i)
            except VerifierInputError as exc:
                out[i] = invalid_item(i, exc)
        if valid:
            out.update(zip(valid, _scored(name, verifier, [items[i] for i in valid]), strict=True))
        return out

    def _gather(
        self, items: Sequence[VerifierItem], labels: Sequence[str], *, components: bool
    ) -> list[dict[str, float | ScoreError]]:
        need: dict[str, list[int]] = {}
        for i, label in enumerate(labels):
            for name in self.recipe.needs(label, components=components):
                need.setdefault(name, []).append(i)
        per_item: list[dict[str, float | ScoreError]] = [{} for _ in items]
        for name, indices in need.items():
            for i, value in (self._run(name, items, indices) or {}).items():
                per_item[i][name] = value
        return per_item

    def score(
        self, items: Sequence[VerifierItem], task_labels: Sequence[str] | None = None
    ) -> list[RewardBreakdown]:
        """One :class:`RewardBreakdown` per item (labels from ``task_labels`` or the items' metadata)."""
        labels = self._labels(items, task_labels)
        return [
            self.recipe.compose(label, got)
            for label, got in zip(labels, self._gather(items, labels, components=True), strict=True)
        ]

    def format_rewards(
        self, items: Sequence[VerifierItem], task_labels: Sequence[str] | None = None
    ) -> torch.Tensor:
        """(N,) float32 weighted format term per item (the part of the total outside the weight matrix)."""
        import torch

        labels = self._labels(items, task_labels)
        terms = []
        for i, (label, got) in enumerate(
            zip(labels, self._gather(items, labels, components=False), strict=True)
        ):
            recipe = self.recipe.labels.get(label)
            weight = recipe.format_weight if recipe else 1.0
            value = got.get(self.recipe.format_verifier_for(label), 0.0 if weight == 0 else None)
            if value is None or isinstance(value, ScoreError):
                why = value.message if value is not None else "its format verifier is not installed"
                raise ConfigError(f"item {i}: no format reward ({why}); the format reward is mandatory")
            terms.append(weight * float(value))
        return torch.tensor(terms, dtype=torch.float32)


def _scored(name: str, verifier: Verifier, items: Sequence[VerifierItem]) -> list[float | ScoreError]:
    """Scores of validated items; a batch that raises is retried item by item (as the server's batcher
    does), so one item that breaks the verifier fails alone."""
    try:
        return [s.score for s in verifier(items)]
    except Exception as exc:  # a verifier's bug becomes that item's failure, never a made-up score
        if len(items) > 1:
            return [value for item in items for value in _scored(name, verifier, [item])]
        return [ScoreError("VERIFIER_FAILED", verifier_raised(name, exc))]
