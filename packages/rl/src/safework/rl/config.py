"""Run configuration: TOML files that compose (``include``), validated in full before any compute.

A config names the model, how rollouts are sampled, the reward recipe, the advantage estimator and loss,
the optimiser and an ordered list of ``[[stages]]`` (``kind = "sft"`` or ``"rl"``). A stage may override the
run-wide ``rollout``, ``algorithm`` and ``optim`` tables with its own partial tables, which is how the CALE
stage swaps the estimator without repeating the rest. ``include = ["base.toml", ...]`` merges other files
first (tables merged key by key, later wins; ``stages`` lists concatenated in order), and
``[overrides.<stage name>]`` tables are merged into the named stage last, so the documented run and the demo
are the same stage files with different sizes.

Every key is checked: an unknown key anywhere is an error that names the key, the table and the keys it
accepts, before a model is loaded.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from safework.core.errors import ConfigError
from safework.rl.data import SourceSpec
from safework.rl.losses import LossConfig
from safework.rl.rollout.base import RolloutSettings

SYSTEM_PROMPTS = {"think": None}  # "think" -> the SafeLadder reasoning prompt (RolloutSettings' default)


@dataclass(frozen=True)
class ModelConfig:
    path: str = "default"  # `default` (embedded SmolLM2-135M-Instruct), a HF folder or a GGUF file
    dtype: Literal["float32", "bfloat16"] = "float32"


@dataclass(frozen=True)
class RolloutConfig:
    backend: Literal["hf", "vllm"] = "hf"
    samples: int = 4
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    system: str = (
        "think"  # "think": the SafeLadder reasoning prompt; "none": the template's own; else the text
    )
    batch_size: int = 16

    def settings(self) -> RolloutSettings:
        from safework.rl.evaluation.decodings import THINK_SYSTEM_PROMPT

        system = {"think": THINK_SYSTEM_PROMPT, "none": None}.get(self.system, self.system)
        return RolloutSettings(
            self.samples, self.max_new_tokens, self.temperature, self.top_p, system, self.batch_size
        )


@dataclass(frozen=True)
class RewardConfig:
    recipe: str = "default"  # "default" (the paper's recipe table, shipped) or a recipe TOML path
    server: str = ""  # host:port of a reward server; empty: score in-process
    overlap: bool = True  # score a rollout chunk while the next chunk is being generated


@dataclass(frozen=True)
class AlgorithmConfig:
    estimator: str = "grpo"
    estimator_options: Mapping[str, Any] = field(default_factory=dict)
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-6
    warmup_ratio: float = 0.03
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    mini_batches: int = 2  # optimiser steps per rollout (>= 2: CPGD's clip and drift act from the second on)
    epochs: int = 1  # SFT passes over the kept traces

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0 (got {self.lr})")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"optim.warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if self.mini_batches < 1 or self.epochs < 1:
            raise ConfigError("optim.mini_batches and optim.epochs must be >= 1")


@dataclass(frozen=True)
class TraceConfig:
    """CoT-SFT self-distillation: how traces are sampled and which survive."""

    samples: int = 4  # traces sampled per prompt
    temperature: float = 0.8
    top_p: float = 0.95
    think_tokens: int = 64
    answer_tokens: int = 96
    min_score: float = 0.5  # every recipe component must reach this (and the format reward must be 1)


@dataclass(frozen=True)
class StageConfig:
    name: str
    kind: Literal["sft", "rl"]
    steps: int = 1  # rl: updates; sft: ignored (one pass of trace collection, then optim.epochs)
    prompts_per_step: int = 8  # rl: prompts per rollout; sft: prompts to distil traces from
    data: tuple[SourceSpec, ...] = ()
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    traces: TraceConfig = field(default_factory=TraceConfig)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.prompts_per_step < 1:
            raise ConfigError(f"stage {self.name!r}: steps and prompts_per_step must be >= 1")
        if not self.data:
            raise ConfigError(f"stage {self.name!r} has no `data`; list at least one prompt source")


@dataclass(frozen=True)
class CheckpointConfig:
    every: int = 1  # save after every N rl steps (and at the end of every stage)
    keep: int = 2  # newest checkpoints kept on disk

    def __post_init__(self) -> None:
        if self.every < 1 or self.keep < 1:
            raise ConfigError("checkpoint.every and checkpoint.keep must be >= 1")


@dataclass(frozen=True)
class DistributedConfig:
    """Used only when launched with several ranks (``torchrun`` / ``deepspeed``)."""

    zero_stage: int = 2

    def __post_init__(self) -> None:
        if self.zero_stage not in (2, 3):
            raise ConfigError(f"distributed.zero_stage must be 2 or 3 (got {self.zero_stage})")


@dataclass(frozen=True)
class RunConfig:
    stages: tuple[StageConfig, ...]
    seed: int = 0
    threads: int = 0  # torch threads; 0 leaves torch's default
    model: ModelConfig = field(default_factory=ModelConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    source: str = "<config>"

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


# -- building dataclasses from TOML tables, with every key checked -------------------------------------------
_STAGE_SHARED = ("rollout", "algorithm", "optim", "traces")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        return _check_type(value, options[0], where)
    if origin is Literal:
        if value not in typing.get_args(hint):
            choices = ", ".join(repr(a) for a in typing.get_args(hint))
            raise ConfigError(f"{where} = {value!r} is not one of {choices}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (
        not isinstance(value, hint) or (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where} must be {hint.__name__} (got {value!r})")
    return value


def build(cls: type[Any], table: Any, where: str) -> Any:
    """``cls(**table)`` for a (possibly nested) frozen dataclass, rejecting unknown keys and wrong types."""
    if dataclasses.is_dataclass(table):
        return table
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{where}] must be a table (got {table!r})")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ConfigError(
            f"[{where}] has unknown key(s) {', '.join(unknown)}; it accepts: {', '.join(names)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[name] = build(hint, value, f"{where}.{name}")
        elif name == "data":
            if not isinstance(value, list):
                raise ConfigError(f"[{where}].data must be a list of {{ source = ..., weight = ... }} tables")
            kwargs[name] = tuple(build(SourceSpec, v, f"{where}.data[{i}]") for i, v in enumerate(value))
        elif name == "estimator_options":
            if not isinstance(value, Mapping):
                raise ConfigError(f"[{where}].estimator_options must be a table")
            kwargs[name] = dict(value)
        else:
            kwargs[name] = _check_type(value, hint, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"[{where}]: {exc}") from exc


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if key == "stages":
            out["stages"] = [*out.get("stages", []), *value]
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path} includes itself (through {' -> '.join(str(p) for p in seen)})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}; pass an existing TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    merged: dict[str, Any] = {}
    includes = data.pop("include", [])
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError(f"{path}: `include` must be a list of file paths (relative to this file)")
    for name in includes:
        merged = _merge(merged, _read(path.parent / name, (*seen, path)))
    return _merge(merged, data)


def from_dict(data: Mapping[str, Any], source: str = "<config>") -> RunConfig:
    """A :class:`RunConfig` from a merged table; stages inherit the run-wide shared tables."""
    data = dict(data)
    stage_overrides = data.pop("overrides", {})
    shared = {key: data.pop(key, {}) for key in _STAGE_SHARED}
    for key, value in shared.items():
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: [{key}] must be a table")
    stages = data.pop("stages", [])
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f'{source}: no [[stages]]; add at least one stage (kind = "sft" or "rl")')
    if not isinstance(stage_overrides, Mapping):
        raise ConfigError(f"{source}: [overrides] must hold one table per stage name")
    unmatched = set(stage_overrides) - {s.get("name") for s in stages if isinstance(s, Mapping)}
    if unmatched:
        raise ConfigError(f"{source}: [overrides] names no stage called {', '.join(sorted(unmatched))}")
    stages = [_merge(dict(s), stage_overrides.get(s.get("name"), {})) for s in stages]
    built = []
    names: set[str] = set()
    for index, stage in enumerate(stages):
        if not isinstance(stage, Mapping) or "name" not in stage or "kind" not in stage:
            raise ConfigError(f'{source}: stages[{index}] needs at least `name` and `kind` ("sft" or "rl")')
        if stage["name"] in names:
            raise ConfigError(f"{source}: two stages are named {stage['name']!r}; stage names must be unique")
        names.add(stage["name"])
        merged = dict(stage)
        for key, value in shared.items():
            merged[key] = _merge(dict(value), stage.get(key, {}))
        built.append(build(StageConfig, merged, f"stages.{stage['name']}"))
    unknown = sorted(set(data) - {"seed", "threads", "model", "reward", "checkpoint", "distributed"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key(s) {', '.join(unknown)}; a config accepts include, seed, "
            "threads, model, rollout, reward, algorithm, optim, traces, checkpoint, distributed, overrides "
            "and [[stages]]"
        )
    return RunConfig(
        stages=tuple(built),
        seed=_check_type(data.get("seed", 0), int, "seed"),
        threads=_check_type(data.get("threads", 0), int, "threads"),
        model=build(ModelConfig, data.get("model", {}), "model"),
        reward=build(RewardConfig, data.get("reward", {}), "reward"),
        checkpoint=build(CheckpointConfig, data.get("checkpoint", {}), "checkpoint"),
        distributed=build(DistributedConfig, data.get("distributed", {}), "distributed"),
        source=source,
    )


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Read, merge includes, apply ``overrides`` (a table merged last) and validate."""
    data = _read(Path(path))
    if overrides:
        data = _merge(data, overrides)
    return from_dict(data, str(path))
