"""ScoreError: the explicit "no score" value for one (item, verifier) pair or one item's reward.

It lives outside the server so the recipe (which composes rewards in-process and on the server alike) can
name a failure without importing gRPC. It is falsy, so ``if score:`` never mistakes it for a number.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreError:
    """Why a verifier (or a whole reward) gave no score; ``code`` is a ResultCode name without its prefix
    (``VERIFIER_FAILED``, ``DEADLINE_EXCEEDED``, ``INVALID_ITEM``, ``VERIFIER_NOT_FOUND``...)."""

    code: str
    message: str
    retryable: bool = False

    def __bool__(self) -> bool:  # an error is never a usable score
        return False


def invalid_item(index: int, problem: Exception) -> ScoreError:
    """INVALID_ITEM for item ``index`` of a call; ``validate`` numbers a one-item batch "item 0", so the
    message is renumbered to the item's place in the caller's batch."""
    text = str(problem)
    text = f"item {index}{text[6:]}" if text.startswith("item 0") else f"item {index}: {text}"
    return ScoreError("INVALID_ITEM", text)


def verifier_raised(name: str, problem: BaseException) -> str:
    """How a verifier's exception is reported, in-process and on the reward server alike."""
    return f"the {name} verifier raised {type(problem).__name__}: {problem}"
