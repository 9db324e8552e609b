"""CoT-SFT by self-distillation (SafeWork-R1 §2.1, stage 1): verified reasoning traces, then fine-tuning.

The embedded model almost never writes the ``<think>…</think> answer`` format on its own, so traces are
sampled in two phases under the SafeLadder reasoning prompt: the response is opened with ``<think>`` and the
model writes its reasoning (cut at the last full sentence), then ``</think>`` is appended and the model writes
the answer. Every trace is scored with the reward recipe and kept only if the format reward is 1 and every
recipe component reaches ``traces.min_score`` (safety, helpfulness, answer correctness: whatever the task
label's recipe holds). The model is then fine-tuned on the kept traces (response tokens only).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from safework.core.answer_format import THINK_CLOSE, THINK_OPEN, build
from safework.core.models.generation import Decoding, generate_chat, prompt_ids, render_prompt
from safework.rl.config import StageConfig, TraceConfig
from safework.rl.rollout.base import PromptItem, Rollout, sample_seed
from safework.verifiers.recipe import RewardBreakdown

if TYPE_CHECKING:
    from safework.core.models.loader import LoadedModel
    from safework.rl.trainer import Trainer

_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def cut_at_sentence(text: str) -> str:
    """The text up to its last complete sentence (all of it when none ends)."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].strip() if ends else text.strip()


def distil_traces(
    loaded: LoadedModel, items: Sequence[PromptItem], traces: TraceConfig, system: str | None, seed: int
) -> list[Rollout]:
    """``traces.samples`` well-formed traces per item (think, then answer), as rollouts."""
    tokenizer = loaded.tokenizer
    eos = tokenizer.eos_token_id
    jobs = [(g, k, item) for g, item in enumerate(items) for k in range(traces.samples)]
    heads = [render_prompt(tokenizer, item.prompt, system) + THINK_OPEN + "\n" for _, _, item in jobs]
    seeds = [sample_seed(seed, -1, item.prompt, k) for _, k, item in jobs]

    def sample(texts: list[str], max_new_tokens: int, offset: int) -> list[str]:
        decoding = Decoding(max_new_tokens=max_new_tokens, temperature=traces.temperature, top_p=traces.top_p)
        out = generate_chat(loaded, texts, decoding, template=False, seeds=[s + offset for s in seeds])
        return [cut_at_sentence(g.text) if g.finish_reason == "length" else g.text.strip() for g in out]

    thinks = [t.replace(THINK_CLOSE, "").strip() for t in sample(heads, traces.think_tokens, 0)]
    answers = sample(
        [head + think + "\n" + THINK_CLOSE + "\n" for head, think in zip(heads, thinks, strict=True)],
        traces.answer_tokens,
        1,
    )
    rollouts = []
    for (group, k, item), think, answer in zip(jobs, thinks, answers, strict=True):
        text = build(think, answer)
        response = [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
        rollouts.append(
            Rollout(
                group=group,
                sample=k,
                item=item,
                text=text,
                prompt_ids=tuple(prompt_ids(tokenizer, item.prompt, system)),
                response_ids=(*response, *([eos] if isinstance(eos, int) else [])),
                finish_reason="stop",
            )
        )
    return rollouts


def passes(breakdown: RewardBreakdown, min_score: float) -> bool:
    """Format reward 1 and every recipe component at least ``min_score`` (a failed item never passes)."""
    if breakdown.total is None or breakdown.format_score != 1.0:
        return False
    return all(score >= min_score for score in breakdown.scores.values())


def survival(breakdowns: Sequence[RewardBreakdown], kept: Sequence[bool]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for breakdown, keep in zip(breakdowns, kept, strict=True):
        row = out.setdefault(breakdown.task_label, {"sampled": 0, "kept": 0})
        row["sampled"] += 1
        row["kept"] += int(keep)
    return out


def fine_tune(trainer: Trainer, stage: StageConfig, traces: Sequence[Rollout]) -> list[float]:
    """``optim.epochs`` passes of next-token loss on the traces' response tokens; the loss of each batch."""
    import torch

    from safework.core.models.logprobs import token_logprobs

    model = trainer.loaded.model
    scheduler = trainer.begin_stage(stage, stage.optim.epochs * stage.optim.mini_batches)
    order = list(range(len(traces)))
    losses = []
    model.train()
    for epoch in range(stage.optim.epochs):
        random.Random(f"{trainer.config.seed}:{stage.name}:{epoch}").shuffle(order)
        for chunk in [c.tolist() for c in torch.tensor(order).chunk(stage.optim.mini_batches)]:
            rows = [(traces[i].prompt_ids, traces[i].response_ids) for i in chunk]
            scored = token_logprobs(model, rows, pad_id=trainer.pad_id())
            loss = -(scored.logprobs.sum() / scored.mask.sum().clamp(min=1.0))
            trainer.parallel.backward_step(model, loss, trainer.optimiser, stage.optim.max_grad_norm)
            scheduler.step()
            losses.append(loss.item())
    model.eval()
    return losses


def run_sft_stage(trainer: Trainer, stage: StageConfig) -> dict[str, Any]:
    """Distil, verify, report survivors per task label, fine-tune; the stage's metrics record."""
    assert trainer.rewards is not None and trainer.engine is not None
    started = time.perf_counter()
    items = trainer.mixtures[stage.name].draw(stage.prompts_per_step)
    system = stage.rollout.settings().system
    with trainer.parallel.full_parameters(trainer.loaded.model):
        traces = distil_traces(trainer.loaded, items, stage.traces, system, trainer.config.seed)
    breakdowns = trainer.rewards.score(traces)
    kept = [passes(b, stage.traces.min_score) for b in breakdowns]
    table = survival(breakdowns, kept)
    folder = trainer.out / "sft" / stage.name
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "traces.jsonl").open("w", encoding="utf-8") as handle:
        for trace, breakdown, keep in zip(traces, breakdowns, kept, strict=True):
            row = {
                "prompt": trace.item.prompt,
                "response": trace.text,
                "kept": keep,
                "reward": breakdown.as_dict(),
            }
            handle.write(json.dumps(row) + "\n")
    survivors = [t for t, keep in zip(traces, kept, strict=True) if keep]
    losses = fine_tune(trainer, stage, survivors) if survivors else []
    trainer.sync_engine()
    return {
        "traces": len(traces),
        "kept": len(survivors),
        "survival": table,
        "sft_loss_first": losses[0] if losses else None,
        "sft_loss_last": losses[-1] if losses else None,
        "seconds": time.perf_counter() - started,
    }
