"""The evaluation run: items → answers (cached) → two judges → figures → report, suite by suite.

Each finished suite is written to the report at once, so an interrupted run keeps what it measured and a
rerun of the same command only generates what is missing (see :mod:`cache`). Every bad input (unknown
suite, empty prompt file, a checkpoint whose tokenizer does not fit it) is rejected before the model is
loaded, or while loading it, with an error that names the fix.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safework.core.errors import ConfigError
from safework.rl.evaluation.decodings import DECODINGS, DEFAULT_DECODINGS, THINK_SYSTEM_PROMPT
from safework.rl.evaluation.suites import GENERATING_SUITES, SPLIT_SEED, SUITES, EvalItem

if TYPE_CHECKING:
    from safework.core.models.loader import LoadedModel
    from safework.rl.evaluation.judges import Judges

REPORT_SCHEMA = 1
DEFAULT_MAX_NEW_TOKENS = 160
DEFAULT_BATCH_SIZE = 64  # per-step cost is mostly reading the weights: wide batches amortise it
PROBES_MAX_PER_LABEL = 16  # reward probes score 9 answers per case through the whole recipe
GROUP_KEY = {"safety": "variant"}  # other suites break down by source


@dataclass
class EvalConfig:
    """What to evaluate and how; ``suites`` may hold ``all``. Checked by :meth:`validate`."""

    model: str = "default"
    suites: Sequence[str] = ()
    prompts_jsonl: Path | None = None
    kind: str | None = None
    n: int = 100
    out: Path = Path("rl-eval")
    decodings: Sequence[str] = DEFAULT_DECODINGS
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    batch_size: int = DEFAULT_BATCH_SIZE
    dtype: str = "auto"
    device: str = "cpu"
    threads: int | None = None
    jailbreak: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved_suites(self) -> list[str]:
        names = list(dict.fromkeys(self.suites))
        if "all" in names:
            return list(SUITES)
        return names

    def validate(self) -> None:
        unknown = [s for s in self.suites if s not in (*SUITES, "all")]
        if unknown:
            raise ConfigError(f"unknown suite {unknown[0]!r}; choose from {', '.join(SUITES)} or all")
        if self.kind is not None and self.prompts_jsonl is None:
            raise ConfigError("--kind applies to --prompts-jsonl; pass --prompts-jsonl FILE with it")
        if self.prompts_jsonl is not None and self.kind is None:
            raise ConfigError("--prompts-jsonl needs --kind harmful|benign|qa (how to judge the answers)")
        if not self.suites and self.prompts_jsonl is None:
            raise ConfigError(
                f"nothing to evaluate; pass --suite ({'|'.join(SUITES)}|all) or --prompts-jsonl"
            )
        bad = [d for d in self.decodings if d not in DECODINGS]
        if bad or not self.decodings:
            raise ConfigError(
                f"unknown decoding {bad[0] if bad else '(none)'!r}; choose from {', '.join(DECODINGS)}"
            )
        for name, value, low in (
            ("--n", self.n, 1),
            ("--max-new-tokens", self.max_new_tokens, 1),
            ("--batch-size", self.batch_size, 1),
        ):
            if value < low:
                raise ConfigError(f"{name} must be >= {low} (got {value})")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError(f"--dtype {self.dtype!r}: choose auto, float32 or bfloat16")


def _dtype(name: str, device: str) -> Any:
    """bfloat16 where the hardware computes it natively (about 2x faster on a CPU with AVX512-BF16/AMX)."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32


def _threads(requested: int | None) -> int:
    """One thread on an oversubscribed machine: OpenMP workers that get preempted stall each other, and
    two contended threads decode several times slower than one. Otherwise torch's default."""
    import torch

    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--threads must be >= 1 (got {requested})")
        return requested
    cpus = os.cpu_count() or 1
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return 1 if busy >= cpus else torch.get_num_threads()


def collect_items(config: EvalConfig) -> dict[str, list[EvalItem]]:
    """Every generating suite's items (cheap: data only), so bad input fails before the model loads."""
    from safework.rl.evaluation.suites import prompt_file_items, suite_items

    items: dict[str, list[EvalItem]] = {}
    for suite in config.resolved_suites():
        if suite in GENERATING_SUITES:
            items[suite] = suite_items(suite, config.n, jailbreak=config.jailbreak)
    if config.prompts_jsonl is not None:
        assert config.kind is not None
        custom = prompt_file_items(config.prompts_jsonl, config.kind, config.n)
        items[custom[0].suite] = custom
    return items


def load_model(config: EvalConfig) -> LoadedModel:
    """The model under test, in the evaluation dtype (vocabulary checked against its tokenizer)."""
    from safework.core.models import load_causal_lm

    return load_causal_lm(config.model, dtype=_dtype(config.dtype, config.device), device=config.device)


def _machine(threads: int) -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def run_evaluation(
    config: EvalConfig,
    *,
    loaded: LoadedModel | None = None,
    judges: Judges | None = None,
    on_suite: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the configured suites and write report.json / report.md / chart.png into ``config.out``.

    ``loaded`` replaces loading ``config.model`` and ``judges`` the default judges (tests pass tiny
    models and rule stand-ins); ``on_suite`` receives each suite's one-line summary as soon as it is
    finished (``--json`` prints it).
    """
    import torch

    from safework.core.console import progress
    from safework.rl.evaluation.answers import answer_items, missing_count
    from safework.rl.evaluation.cache import GenerationCache, model_fingerprint
    from safework.rl.evaluation.judges import Judges
    from safework.rl.evaluation.metrics import grouped, summarise
    from safework.rl.evaluation.report import suite_line, write_report

    config.validate()
    started = time.perf_counter()
    items = collect_items(config)
    threads = _threads(config.threads)
    torch.set_num_threads(threads)
    load_started = time.perf_counter()
    if loaded is None:
        loaded = load_model(config)
    fingerprint = model_fingerprint(loaded)
    config.out.mkdir(parents=True, exist_ok=True)
    cache = GenerationCache.open(config.out)
    specs = [DECODINGS[name] for name in config.decodings]
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "model": {
            "spec": config.model,
            "name": loaded.name,
            "kind": loaded.kind,
            "fingerprint": fingerprint,
            "dtype": str(loaded.dtype).removeprefix("torch."),
            "device": str(loaded.device),
            "parameters": loaded.num_parameters,
        },
        "settings": {
            "n": config.n,
            "decodings": [s.to_json(config.max_new_tokens) for s in specs],
            "headline_decoding": specs[0].name,
            "max_new_tokens": config.max_new_tokens,
            "batch_size": config.batch_size,
            "split_seed": SPLIT_SEED,
            "jailbreak": config.jailbreak,
            "think_system_prompt": THINK_SYSTEM_PROMPT,
        },
        "machine": _machine(threads),
        "suites": {},
        "timing": {"load_seconds": round(time.perf_counter() - load_started, 2)},
    }
    judges = judges or Judges()
    total = sum(
        missing_count(cache, fingerprint, suite_items, spec, config.max_new_tokens)
        for suite_items in items.values()
        for spec in specs
    )
    with progress() as bar:
        task = bar.add_task("generating", total=total)
        for suite, suite_items in items.items():
            suite_started = time.perf_counter()
            decodings: dict[str, Any] = {}
            groups: dict[str, Any] = {}
            generation_seconds = 0.0
            for spec in specs:
                bar.update(task, description=f"{suite} · {spec.name}")
                generation_started = time.perf_counter()
                answers = answer_items(
                    loaded,
                    suite_items,
                    spec,
                    fingerprint=fingerprint,
                    cache=cache,
                    max_new_tokens=config.max_new_tokens,
                    batch_size=config.batch_size,
                    on_batch=lambda k: bar.advance(task, k),
                )
                generation_seconds += time.perf_counter() - generation_started
                bar.update(task, description=f"{suite} · judging")
                verdicts = judges.judge(suite_items, [a["text"] for a in answers])
                decodings[spec.name] = summarise(suite_items, answers, verdicts)
                groups[spec.name] = grouped(suite_items, answers, verdicts, GROUP_KEY.get(suite, "source"))
            seconds = time.perf_counter() - suite_started
            report["suites"][suite] = {
                "suite": suite,
                "kind": suite_items[0].kind,
                "n": len(suite_items),
                "sources": sorted({i.source for i in suite_items}),
                "headline_decoding": specs[0].name,
                "decodings": decodings,
                "groups": groups,
                "seconds": {"total": round(seconds, 1), "generation": round(generation_seconds, 1)},
            }
            report["timing"][suite] = round(seconds, 1)
            write_report(report, config.out, final=False)
            if on_suite is not None:
                on_suite(suite_line(report, suite))
    if "reward-probes" in config.resolved_suites():
        probes_started = time.perf_counter()
        report["suites"]["reward-probes"] = reward_probes(min(config.n, PROBES_MAX_PER_LABEL))
        report["timing"]["reward-probes"] = round(time.perf_counter() - probes_started, 1)
        if on_suite is not None:
            on_suite(suite_line(report, "reward-probes"))
    if any(report["suites"][s]["kind"] in ("harmful", "benign") for s in items):
        from safework.rl.evaluation.judges import keyword_accuracy

        report["second_judge_accuracy"] = keyword_accuracy()
    report["judges"] = judges.describe()
    report["timing"]["total_seconds"] = round(time.perf_counter() - started, 1)
    write_report(report, config.out, final=True)
    return report


def reward_probes(n_per_label: int) -> dict[str, Any]:
    """The reward-gaming probes (:mod:`safework.rl.evaluation.probes`): can a degenerate policy (always
    refuse, empty, format only, keyword stuffing, ...) out-earn good answers under the reward recipe?"""
    from safework.rl.evaluation.probes import run_probes

    result = run_probes(n_per_label=n_per_label).as_dict()
    result["n"] = n_per_label
    result["kind"] = "reward-probes"
    return result
