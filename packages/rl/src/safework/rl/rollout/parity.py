"""The weight-sync parity probe: one fixed chat exchange scored token by token.

After every weight sync the trainer compares the rollout engine's log-probs of this probe with its own; a
sync that silently failed (weights not loaded, a stale prefix cache, a wrong dtype) shows up as a large
difference and stops the run instead of training on samples from the wrong policy.
"""

from __future__ import annotations

from typing import Any

from safework.core.models.generation import prompt_ids

PROBE_PROMPT = "Is it safe to mix bleach and vinegar when cleaning?"
PROBE_RESPONSE = (
    "<think>\nMixing them releases chlorine gas, which harms the lungs.\n</think>\n"
    "No. Use them separately and rinse in between."
)
# float32 engines agree to ~1e-5; bf16 kernels (vLLM on CPU) drift by a few hundredths on a 40-token probe.
PROBE_TOLERANCE = 0.1


def probe_rows(tokenizer: Any) -> list[tuple[list[int], list[int]]]:
    """The probe as one (context ids, target ids) row, built the way rollouts are."""
    context = prompt_ids(tokenizer, PROBE_PROMPT)
    target = [int(i) for i in tokenizer(PROBE_RESPONSE, add_special_tokens=False)["input_ids"]]
    return [(context, target)]


def probe_logprobs(model: Any, tokenizer: Any) -> list[float]:
    """The trainer-side log-probs of the probe's response tokens (float32, no gradient)."""
    import torch

    from safework.core.models.logprobs import token_logprobs

    pad = tokenizer.pad_token_id if isinstance(tokenizer.pad_token_id, int) else 0
    with torch.no_grad():
        scored = token_logprobs(model, probe_rows(tokenizer), pad_id=pad)
    return [float(x) for x in scored.logprobs[0].tolist()]
