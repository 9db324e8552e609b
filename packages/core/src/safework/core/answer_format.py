"""The ``<think>…</think> answer`` format: the one place that builds and splits it.

SafeLadder (SafeWork-R1, §1 of the paper's I/O format) asks the model to reason inside ``<think></think>``
and then answer. Reward models judge the text after the *last* ``</think>``; the "*Think" variants judge
the think part separately. Every package splits responses through this module, so a verifier, the reward
server's step stream, the rule checks and the RL rollouts all agree on what "the answer" is.

Three shapes of response:

- ``<think>reasoning</think> answer`` — think is the text between the first ``<think>`` and the last
  ``</think>``; answer is the text after the last ``</think>``;
- ``<think>reasoning…`` cut off before ``</think>`` — think is everything after ``<think>``, the answer is
  empty (the model never answered: a truncated rollout must not be judged as if its reasoning were its
  answer);
- no tags — a plain chat answer: think is None, the answer is the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# The paper's format rule (spec §4): anything, then <think> with non-empty content </think>, then at least
# one non-space character.
_WELL_FORMED = re.compile(r"<think>(?P<think>.*?)</think>(?P<answer>.*)\Z", re.S)


@dataclass(frozen=True)
class SplitResponse:
    """A response cut into its parts; ``think`` is None when the response has no ``<think>`` block."""

    think: str | None
    answer: str
    closed: bool  # True when a ``</think>`` ends the reasoning (False: plain answer or truncated thinking)

    @property
    def truncated(self) -> bool:
        """Thinking was opened but never closed: no answer was given."""
        return self.think is not None and not self.closed


def split(response: str) -> SplitResponse:
    """Split ``response`` into think and answer (stripped); see the module docstring for the three shapes."""
    if THINK_CLOSE in response:
        head, answer = response.rsplit(THINK_CLOSE, 1)
        think = head.split(THINK_OPEN, 1)[1] if THINK_OPEN in head else head
        return SplitResponse(think.strip(), answer.strip(), closed=True)
    if THINK_OPEN in response:
        return SplitResponse(response.split(THINK_OPEN, 1)[1].strip(), "", closed=False)
    return SplitResponse(None, response.strip(), closed=False)


def final_answer(response: str) -> str:
    """The text a reward model judges: after the last ``</think>``, or the whole plain response."""
    return split(response).answer


def think_part(response: str) -> str | None:
    """The reasoning, or None for a response without a ``<think>`` block."""
    return split(response).think


def well_formed(response: str) -> bool:
    """The paper's format reward: a non-empty ``<think>`` block followed by a non-empty answer."""
    match = _WELL_FORMED.search(response)
    return bool(match and match.group("think").strip() and final_answer(response))


def build(think: str | None, answer: str) -> str:
    """``<think>\\n{think}\\n</think>\\n{answer}``, or the plain answer when think is None."""
    if think is None:
        return answer
    return f"{THINK_OPEN}\n{think.strip()}\n{THINK_CLOSE}\n{answer.strip()}"


def thinking_prefix(steps: Sequence[str], final: bool) -> str:
    """A partial trace made of reasoning steps (paragraphs), closed with ``</think>`` when ``final``."""
    return THINK_OPEN + "\n" + "\n\n".join(steps) + ("\n" + THINK_CLOSE if final else "")
