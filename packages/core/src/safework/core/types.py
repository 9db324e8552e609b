"""Small frozen value types shared by every package (so packages agree without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One prompt to answer, with an optional gold reference and metadata (task label, source)."""

    prompt: str
    reference: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """A model's answer to a :class:`Sample`."""

    sample: Sample
    text: str
    token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ReasoningStep:
    """One step of a chain of thought, addressable for step-level verification and editing."""

    index: int
    text: str


@dataclass(frozen=True)
class VerifierScore:
    """A verifier's normalised judgement of one item; ``score`` is in [0, 1]."""

    principle: str
    label: str
    score: float
    categories: tuple[str, ...] = ()
    raw: Any = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(
                f"VerifierScore.score must lie in [0, 1], got {self.score}; normalise before returning."
            )


@dataclass(frozen=True)
class WatermarkPayload:
    """A multi-bit message: ``bits`` bits packed big-endian into ``value`` (0 bits: a zero-bit mark)."""

    value: int
    bits: int

    def __post_init__(self) -> None:
        if self.bits < 0:
            raise ValueError(f"WatermarkPayload.bits must be >= 0, got {self.bits}.")
        if not 0 <= self.value < (1 << self.bits):
            raise ValueError(
                f"payload {self.value:#x} does not fit in {self.bits} bits; use a shorter value."
            )

    @classmethod
    def from_hex(cls, text: str, bits: int) -> WatermarkPayload:
        """Parse ``'0xBEEF'`` or ``'beef'`` into a payload of ``bits`` bits."""
        digits = text.lower().removeprefix("0x")
        try:
            value = int(digits, 16)
        except ValueError:
            raise ValueError(f"payload {text!r} is not hexadecimal; pass e.g. 0xbeef.") from None
        return cls(value, bits)

    def to_hex(self) -> str:
        width = (self.bits + 3) // 4
        return f"{self.value:0{width}x}" if width else ""
