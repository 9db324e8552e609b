"""Per-token log-probabilities of continuations: the one teacher-forced scoring pass every package uses.

The watermark oracle sums them into a perplexity; RL needs them per token, once without gradients (the
rollout policy's ``old_logp``) and once with (the policy being updated). Rows are (context ids, target ids)
pairs, left-padded so every target sits at the end of its row: ``logits_to_keep`` then skips the context's
logits, which for a 49k-token vocabulary are most of the pass's memory. Position ids count from each row's
first real token, as in generation, so a row's scores do not depend on what it was batched with.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safework.core.errors import ConfigError

if TYPE_CHECKING:
    import torch

Row = tuple[Sequence[int], Sequence[int]]  # (context ids, target ids)


@dataclass
class TokenLogprobs:
    """(B, K) tensors, K = the longest target: row r's target occupies its last ``len(target)`` columns."""

    logprobs: torch.Tensor  # float32; differentiable when computed with gradients enabled
    mask: torch.Tensor  # float32 1/0: which columns are target tokens
    entropy: torch.Tensor | None = None  # float32 per-token entropy of the next-token distribution (no grad)


def _keeps_logits(model: Any) -> bool:
    return "logits_to_keep" in inspect.signature(model.forward).parameters


def token_logprobs(
    model: Any,
    rows: Sequence[Row],
    *,
    pad_id: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> TokenLogprobs:
    """log π(target_t | context, target_<t) for every row, in one forward pass.

    ``temperature`` divides the logits first, so the scores are those of the distribution a sampler at that
    temperature drew from (what a policy-gradient ratio must compare against). Gradients flow unless the
    caller disables them.
    """
    import torch

    if not rows:
        raise ConfigError("token_logprobs needs at least one (context, target) row")
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0 to score tokens (got {temperature})")
    for index, (context, _) in enumerate(rows):
        if not context:
            raise ConfigError(
                f"row {index} has an empty context; the first target token needs one to predict it"
            )
    device = next(model.parameters()).device
    lengths = [len(c) + len(t) for c, t in rows]
    width, keep = max(lengths), max(len(t) for _, t in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.full((len(rows), keep), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), keep), dtype=torch.float32)
    for r, ((context, target), length) in enumerate(zip(rows, lengths, strict=True)):
        ids[r, width - length :] = torch.tensor([*context, *target], dtype=torch.long)
        attention[r, width - length :] = 1
        if target:
            targets[r, keep - len(target) :] = torch.tensor(list(target), dtype=torch.long)
            mask[r, keep - len(target) :] = 1.0
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    extra: dict[str, Any] = {"logits_to_keep": keep + 1} if _keeps_logits(model) else {}
    output = model(
        input_ids=ids.to(device),
        attention_mask=attention.to(device),
        position_ids=positions.to(device),
        use_cache=False,
        **extra,
    )
    # The kept positions end at the row's last token; position p predicts token p + 1, so drop the last one.
    logits = output.logits[:, -(keep + 1) : -1, :].float()
    if temperature != 1.0:
        logits = logits / temperature
    normaliser = torch.logsumexp(logits, dim=-1)
    picked = logits.gather(-1, targets.to(device).unsqueeze(-1)).squeeze(-1)
    mask = mask.to(device)
    logprobs = (picked - normaliser) * mask
    entropy = None
    if with_entropy:
        with torch.no_grad():
            probabilities = torch.softmax(logits.detach(), dim=-1)
            entropy = (normaliser.detach() - (probabilities * logits.detach()).sum(-1)) * mask
    return TokenLogprobs(logprobs, mask, entropy)
