"""Rollout + update throughput: our RL trainer vs TRL's ``GRPOTrainer``, same settings, one invocation.

Both sides train the embedded SmolLM2-135M-Instruct (float32, CPU) on the same ``gsm-symbolic`` prompts in the
same order (8 per step, G = 4 samples each, the SafeLadder think system prompt through the chat template, up
to 64 new tokens at temperature 1 / top-p 1), score them with the same cheap rule reward (our recipe machinery
over the ``length`` verifier; TRL gets it through our TRL adapter ``reward_function(Recipe)``) and take two
AdamW steps (lr 1e-6, constant schedule, no weight decay, grad-norm clip 1) per rollout with the same loss
family, no reference model / KL. Tokens/s = generated completion tokens (stop token included) per second of
the whole step (rollout + reward + update). Medians over the measured steps; the first ``--warmup`` steps of
each side are skipped.

Run with TRL installed next to the main venv (never into it)::

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
        /tmp/trl/venv/bin/python benchmarks/rl_vs_trl.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

RESULT = Path(__file__).resolve().parent / "results" / "rl_vs_trl.json"
INSTALL = "pip install -c constraints.txt -r requirements/bench-trl.txt"
LABEL = "bench_length"
LOSS_FAMILY = (
    "PPO/GRPO clipped surrogate -min(r*A, clip(r, 1-0.2, 1+0.2)*A), sequence-mean-token-mean aggregation, "
    "GRPO group z-score advantages (std per group), no reference model / KL (ours: LossConfig(kind='ppo', "
    "aggregation='seq-mean-token-mean'), estimator 'grpo'; TRL: loss_type='grpo', scale_rewards='group', "
    "beta=0)"
)
# Linear length ramp over characters: 1 up to 16 chars, 0 at 16 * (1 + 31) = 512 chars, which 64 tokens of
# this model rarely reach, so the 4 responses of a group almost never tie (ours skips tied groups, TRL not).
RECIPE = f"""
[verifiers.bench-length]
factory = "length"
options = {{ budget = 16, unit = "chars", tolerance = 31.0 }}

[labels.{LABEL}]
format_weight = 0.0
components = [{{ verifier = "bench-length", weight = 1.0 }}]
"""
UNMATCHED = [
    "sampling RNG: ours seeds one generator per response, TRL draws from the global torch RNG, so the texts "
    "and lengths differ; tokens/s normalises for that",
    "generation loop: ours (safework.core.models.generation) drops finished rows from the batch; TRL calls "
    "transformers generate(), which keeps every row until all stop or hit the limit",
    "ours leaves tied (zero-variance) reward groups out of the update, TRL trains on them with advantage 0; "
    "see kept_responses (the length reward makes ties rare)",
    "mini-batches: ours deals whole groups to the 2 mini-batches, TRL shuffles the 32 responses, then slices",
    "GRPO std epsilon: ours 1e-6, TRL 1e-4",
]


@dataclass
class Step:
    seconds: float
    tokens: int
    rollout_s: float | None = None
    update_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def require_trl() -> str:
    try:
        import trl
    except ImportError:
        sys.exit(
            "rl_vs_trl: TRL is not installed in this interpreter. Install it into a separate venv, never "
            f"the main one: `{INSTALL}` (run from the repository root)"
        )
    from trl import GRPOConfig, GRPOTrainer  # noqa: F401  (fail now, not after our side has run)

    return str(trl.__version__)


def prompt_plan(seed: int, steps: int, per_step: int) -> list[list[Any]]:
    """The prompts our trainer draws, step by step (its PromptMixture with the run seed)."""
    from safework.rl.data import PromptMixture, SourceSpec

    mixture = PromptMixture((SourceSpec("gsm-symbolic", label=LABEL),), seed)
    return [mixture.draw(per_step) for _ in range(steps)]


def run_ours(args: argparse.Namespace, recipe: Path, work: Path) -> list[Step]:
    from safework.rl.config import from_dict
    from safework.rl.trainer import Trainer

    config = from_dict(
        {
            "seed": args.seed,
            "threads": args.threads,
            "model": {"path": "default", "dtype": "float32"},
            "reward": {"recipe": str(recipe)},
            "checkpoint": {"every": 1_000_000, "keep": 1},  # only the end-of-stage save, after the last step
            "rollout": {
                "samples": args.generations,
                "max_new_tokens": args.max_new_tokens,
                "temperature": args.temperature,
                "top_p": args.top_p,
                "system": "think",
                "batch_size": args.rollout_batch,
            },
            "algorithm": {
                "estimator": "grpo",
                "loss": {"kind": "ppo", "aggregation": "seq-mean-token-mean", "clip_eps": 0.2},
            },
            "optim": {
                "lr": args.lr,
                "warmup_ratio": 0.0,
                "weight_decay": 0.0,
                "max_grad_norm": 1.0,
                "mini_batches": 2,
            },
            "stages": [
                {
                    "name": "bench",
                    "kind": "rl",
                    "steps": args.warmup + args.steps,
                    "prompts_per_step": args.prompts,
                    "data": [{"source": "gsm-symbolic", "label": LABEL}],
                }
            ],
        },
        "rl_vs_trl",
    )
    out = work / "ours"
    Trainer(config, out, show_progress=False).run()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [
        Step(
            r["rollout_s"] + r["update_s"],
            int(r["response_tokens"]),
            r["rollout_s"],
            r["update_s"],
            {"kept_responses": r["kept_responses"], "reward": r["reward"], "length_mean": r["length_mean"]},
        )
        for r in rows
        if r.get("kind") == "rl"
    ]


def _timed(record: list[float], fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*a: Any, **k: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            record.append(time.perf_counter() - start)

    return wrapper


def run_trl(args: argparse.Namespace, recipe: Path, work: Path) -> list[Step]:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from safework.core.models import load_causal_lm
    from safework.rl.evaluation.decodings import THINK_SYSTEM_PROMPT
    from safework.verifiers.recipe import Recipe
    from safework.verifiers.server.trl import reward_function

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    steps = args.warmup + args.steps
    rows = [
        {
            "prompt": [
                {"role": "system", "content": THINK_SYSTEM_PROMPT},
                {"role": "user", "content": item.prompt},
            ],
            "task_label": item.task_label,
            "reference": item.reference or "",
        }
        for batch in prompt_plan(args.seed, steps, args.prompts)
        for item in batch
    ]
    loaded = load_causal_lm("default", dtype=torch.float32)
    # One of our steps = one TRL generation batch of prompts * G = 32 completions, generated at once and split
    # into steps_per_generation = 2 slices of per_device_train_batch_size = 16 completions; each slice is one
    # optimiser step (gradient_accumulation_steps = 1), and num_iterations = 1 uses the rollout once. That is
    # ours' optim.mini_batches = 2 over the 32 responses. As steps_per_generation > gradient_accumulation
    # steps, TRL computes the rollout policy's log-probs in a no-grad pass, as ours does. TRL max_steps counts
    # optimiser steps, hence 2 per rollout.
    per_update = args.prompts * args.generations // 2
    config = GRPOConfig(
        output_dir=str(work / "trl"),
        per_device_train_batch_size=per_update,
        gradient_accumulation_steps=1,
        steps_per_generation=2,
        num_generations=args.generations,
        num_iterations=1,
        max_completion_length=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=0,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        optim="adamw_torch",
        beta=0.0,
        epsilon=0.2,
        loss_type="grpo",
        scale_rewards="group",
        max_steps=2 * steps,
        shuffle_dataset=False,  # the prompts in our trainer's order
        seed=args.seed,
        use_cpu=True,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        use_vllm=False,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        log_completions=False,
    )
    reward = reward_function(Recipe.load(recipe), name="length_reward")
    trainer = GRPOTrainer(
        model=loaded.model,
        reward_funcs=[reward],
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=loaded.tokenizer,
    )
    generate_s: list[float] = []
    reward_s: list[float] = []
    tokens: list[int] = []
    score = trainer._generate_and_score_completions

    def counted(inputs: Any) -> Any:
        out = score(inputs)
        tokens.append(int(out["completion_mask"].sum()))
        return out

    trainer._generate = _timed(generate_s, trainer._generate)  # type: ignore[method-assign]
    trainer._calculate_rewards = _timed(reward_s, trainer._calculate_rewards)  # type: ignore[method-assign]
    trainer._generate_and_score_completions = counted  # type: ignore[method-assign]
    begin: list[float] = []
    end: list[float] = []
    threads: list[int] = []

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, *_: Any, **__: Any) -> None:
            threads.append(torch.get_num_threads())
            begin.append(time.perf_counter())

        def on_step_end(self, *_: Any, **__: Any) -> None:
            end.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    losses = [h for h in trainer.state.log_history if "loss" in h]
    result = []
    for k in range(len(tokens)):
        seconds = end[2 * k + 1] - begin[2 * k]
        rollout = generate_s[k] + reward_s[k]
        extra: dict[str, Any] = {"threads": threads[2 * k]}
        if len(losses) > 2 * k:
            extra["reward"] = losses[2 * k].get("reward")
            extra["length_mean"] = losses[2 * k].get("completions/mean_length")
        result.append(Step(seconds, tokens[k], rollout, seconds - rollout, extra))
    return result


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(steps: list[Step], warmup: int) -> dict[str, Any]:
    measured = steps[warmup:]
    return {
        "measured_steps": len(measured),
        "step_s": median([s.seconds for s in measured]),
        "rollout_s": median([s.rollout_s for s in measured]),
        "update_s": median([s.update_s for s in measured]),
        "tokens": median([float(s.tokens) for s in measured]),
        "tokens_per_s": median([s.tokens_per_s for s in measured]),
        "steps": [{**asdict(s), "tokens_per_s": s.tokens_per_s} for s in steps],
    }


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def code_version() -> str:
    """The commit measured, with ``+dirty`` when the packages have uncommitted edits."""
    import subprocess

    root = Path(__file__).resolve().parent.parent

    def git(*a: str) -> str:
        run = subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, check=False)
        return run.stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (
        "+dirty" if git("status", "--porcelain", "packages") else ""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--generations", type=int, default=4, help="G, samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for both sides")
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--steps", type=int, default=4, help="measured steps per side")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up steps per side, not measured")
    parser.add_argument(
        "--rollout-batch",
        type=int,
        default=32,
        help="ours' rollout.batch_size; 32 = all prompts*G in one batch, as TRL's single generate() call",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--order", choices=["ours-first", "trl-first"], default="ours-first")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    if (args.prompts * args.generations) % 2:
        parser.error("prompts * generations must be even (two optimiser steps per rollout)")
    trl_version = require_trl()
    code = code_version()  # before the run: what was measured
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    runners = {"ours": run_ours, "trl": run_trl}
    order = ["ours", "trl"] if args.order == "ours-first" else ["trl", "ours"]
    sides: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="rl_vs_trl_") as tmp:
        work = Path(tmp)
        recipe = work / "recipe.toml"
        recipe.write_text(RECIPE, encoding="utf-8")
        for name in order:
            print(f"running {name} ({args.warmup} warm-up + {args.steps} measured steps)...", flush=True)
            started = time.perf_counter()
            steps = runners[name](args, recipe, work)
            wall = time.perf_counter() - started
            peak = (
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            )  # GiB; the process's peak so far
            sides[name] = {"wall_s": wall, "peak_rss_gib_so_far": peak, **summarise(steps, args.warmup)}

    ours, trl = sides["ours"], sides["trl"]
    ratio = ours["tokens_per_s"] / trl["tokens_per_s"]
    print(f"\nloss family: {LOSS_FAMILY}")
    print(
        f"settings: {args.prompts} prompts x G={args.generations}, {args.max_new_tokens} new tokens, "
        f"T={args.temperature}, top_p={args.top_p}, threads={args.threads}, float32, lr={args.lr}, "
        f"2 optimiser steps/rollout; medians over {args.steps} steps after {args.warmup} warm-up"
    )
    print(f"\n{'':6}{'step s':>9}{'rollout s':>11}{'update s':>10}{'tokens':>8}{'tok/s':>8}")
    for name, side in (("ours", ours), ("trl", trl)):
        print(
            f"{name:6}{side['step_s']:9.2f}{side['rollout_s']:11.2f}{side['update_s']:10.2f}"
            f"{side['tokens']:8.0f}{side['tokens_per_s']:8.1f}"
        )
    verdict = "ours >= TRL" if ratio >= 1 else "ours < TRL"
    print(f"\nratio (ours / TRL) tokens/s: {ratio:.3f}  ({verdict})")
    result = {
        "benchmark": "rl_vs_trl",
        "metric": "generated completion tokens per second of the whole step (rollout + reward + update)",
        "loss_family": LOSS_FAMILY,
        "reward": "recipe label bench_length: length verifier, chars, budget 16, tolerance 31 (format off)",
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "ratio_ours_over_trl": ratio,
        "ours": ours,
        "trl": trl,
        "unmatched": UNMATCHED,
        "versions": {
            "trl": trl_version,
            **{n: version(n) for n in ("torch", "transformers", "accelerate", "datasets")},
            "python": platform.python_version(),
        },
        "host": {"cpus": os.cpu_count(), "machine": platform.machine()},
        "code": code,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
