"""Rates with honest intervals: Wilson score intervals for one rate, Newcombe's for a difference of two.

A training claim ("the safe rate rose from 0.41 to 0.55") is only as good as its uncertainty at n = 100;
the Wald interval p ± z·sqrt(p(1-p)/n) collapses to zero width at 0 % and 100 %, which small models hit
often (math accuracy 0/100). Wilson's interval (Wilson 1927) keeps its coverage there, and Newcombe's
hybrid score interval (Newcombe 1998, method 10) builds the interval of a difference from the two Wilson
intervals, so comparing two runs needs no extra assumptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Z95 = 1.959963984540054  # two-sided 95 %


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n``; (0, 1) when n is 0 (nothing is known)."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Rate:
    """``successes`` out of ``n`` with its Wilson 95 % interval."""

    successes: int
    n: int

    @property
    def value(self) -> float:
        return self.successes / self.n if self.n else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.successes, self.n)

    def to_json(self) -> dict[str, Any]:
        low, high = self.ci
        return {
            "value": round(self.value, 4),
            "ci": [round(low, 4), round(high, 4)],
            "k": self.successes,
            "n": self.n,
        }


def rate(flags: list[bool]) -> Rate:
    return Rate(sum(flags), len(flags))


def newcombe_difference(
    k1: int, n1: int, k2: int, n2: int, z: float = Z95
) -> tuple[float, tuple[float, float]]:
    """``p2 - p1`` and its 95 % interval for two independent proportions (run B minus run A)."""
    p1 = k1 / n1 if n1 else 0.0
    p2 = k2 / n2 if n2 else 0.0
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    diff = p2 - p1
    low = diff - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = diff + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return diff, (max(-1.0, low), min(1.0, high))
