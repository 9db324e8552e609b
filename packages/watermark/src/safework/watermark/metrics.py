"""Evaluation metrics for watermark runs: payload recovery, false positives, calibration, intervals.

Pure functions on plain numbers (no numpy, no scipy), so they run anywhere a report is read. The
conventions that change numbers are documented at each function, because they decide what a table means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from statistics import NormalDist

from safework.core.errors import ConfigError

# Below this many samples the asymptotic Kolmogorov p-value (with Stephens' correction) is only indicative.
KS_MIN_SAMPLES = 35
_KS_SWITCH = 1.18  # below: the Jacobi-theta form of the CDF converges fast; above: the alternating series


# -- payload recovery ------------------------------------------------------------------------------------
def _check_payload(value: int, bits: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ConfigError(
            f"{what} payload {value!r} is not an integer in [0, 2**{bits}); pass the payload as an int "
            f"of at most {bits} bits"
        )


def bit_accuracy(expected: int, decoded: int | None, bits: int) -> float:
    """The fraction of the ``bits`` payload bits decoded correctly.

    A missing payload (``None``: the extractor abstained) scores 0.5, the accuracy of guessing. Scoring it
    0.0 would make abstaining *worse* than a coin flip and punish a scheme for refusing to guess, and
    dropping it would hide the failure; 0.5 keeps "no information" at exactly the chance level that bit
    accuracy curves are read against. Use :func:`exact_match` for the strict view.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ConfigError(f"bits must be a positive integer (the payload length), got {bits!r}")
    _check_payload(expected, bits, "expected")
    if decoded is None:
        return 0.5
    _check_payload(decoded, bits, "decoded")
    return (bits - (expected ^ decoded).bit_count()) / bits


def exact_match(expected: int, decoded: int | None) -> bool:
    """Whether the whole payload was recovered (a missing payload never matches)."""
    return decoded is not None and decoded == expected


# -- false positives and calibration ----------------------------------------------------------------------
def _p_values(p_values: Iterable[float]) -> list[float]:
    values = [float(p) for p in p_values]
    if not values:
        raise ConfigError("no p-values given; score at least one text before computing a rate")
    bad = [p for p in values if not 0.0 <= p <= 1.0]  # also catches NaN
    if bad:
        raise ConfigError(
            f"{len(bad)} p-value(s) outside [0, 1] (first: {bad[0]!r}); pass the detector's p-values, not "
            "z-scores or confidences"
        )
    return values


def false_positive_rate(p_values: Iterable[float], alpha: float) -> float:
    """The fraction of texts flagged at level ``alpha`` (``p <= alpha``); on human text, the FPR.

    A calibrated detector gives about ``alpha`` here; use :func:`wilson_interval` on the count to judge
    whether a difference from ``alpha`` is more than sampling noise.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha!r}; e.g. 0.01")
    values = _p_values(p_values)
    return sum(p <= alpha for p in values) / len(values)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (the limit law of sqrt(n) * D_n)."""
    if x <= 0.0:
        return 1.0
    if x < _KS_SWITCH:
        # CDF = sqrt(2 pi) / x * sum_{j>=1} exp(-(2j-1)^2 pi^2 / (8 x^2)); five terms reach 1e-15 here.
        c = -(math.pi**2) / (8.0 * x * x)
        cdf = math.sqrt(2.0 * math.pi) / x * sum(math.exp(c * (2 * j - 1) ** 2) for j in range(1, 6))
        return min(1.0, max(0.0, 1.0 - cdf))
    # SF = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 x^2); terms fall faster than e^-2.8j^2 here.
    total = sum((-1) ** (j - 1) * math.exp(-2.0 * j * j * x * x) for j in range(1, 101))
    return min(1.0, max(0.0, 2.0 * total))


def ks_uniform(p_values: Iterable[float]) -> tuple[float, float]:
    """One-sample Kolmogorov-Smirnov test of ``p_values`` against U(0, 1): ``(D, p_value)``.

    Under the null hypothesis (the detector's p-values are calibrated on unwatermarked text) the p-values
    are uniform, so a small KS p-value is evidence of miscalibration. The p-value uses the asymptotic
    Kolmogorov distribution at ``(sqrt(n) + 0.12 + 0.11 / sqrt(n)) * D`` (Stephens' small-sample
    correction). Checked against the exact distribution (Marsaglia-Tsang-Wang) in the tests: absolute
    error <= 0.017 for n >= 35 (:data:`KS_MIN_SAMPLES`; worst near p = 0.75), within 1% relative around
    p = 0.05..0.003; in the far tail (p < 1e-4) it overstates p by up to tens of percent, i.e. errs on
    the conservative side.
    """
    values = sorted(_p_values(p_values))
    n = len(values)
    d_plus = max((i + 1) / n - x for i, x in enumerate(values))
    d_minus = max(x - i / n for i, x in enumerate(values))
    statistic = max(d_plus, d_minus)
    root = math.sqrt(n)
    return statistic, kolmogorov_sf((root + 0.12 + 0.11 / root) * statistic)


# -- intervals and summaries -------------------------------------------------------------------------------
def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial rate ``k / n``.

    Chosen over the normal (Wald) interval because evaluation rates sit near 0 (false positives) and 1
    (payload success), where Wald collapses to a zero-width interval.
    """
    if isinstance(k, bool) or isinstance(n, bool) or not isinstance(k, int) or not isinstance(n, int):
        raise ConfigError(f"wilson_interval needs integer counts, got k={k!r}, n={n!r}")
    if n < 1 or not 0 <= k <= n:
        raise ConfigError(f"wilson_interval needs 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must lie in (0, 1), got {confidence!r}; e.g. 0.95")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    rate = k / n
    denom = 1.0 + z * z / n
    centre = (rate + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(rate * (1.0 - rate) / n + z * z / (4 * n * n))
    # Clamp the float noise at the ends (k = 0 or n must give exactly 0 or 1).
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def rate_summary(k: int, n: int, confidence: float = 0.95) -> dict[str, float | int]:
    """A count as a report row: ``k``, ``n``, ``rate`` and its Wilson interval."""
    low, high = wilson_interval(k, n, confidence)
    return {"k": k, "n": n, "rate": k / n, "ci_low": low, "ci_high": high}


def summarize(values: Sequence[float]) -> dict[str, float | int]:
    """Mean, sample std, median, min and max of the finite values; ``dropped`` counts NaN/inf left out.

    Perplexities of empty continuations are NaN (see :mod:`safework.watermark.oracle`); they are counted,
    not averaged, so one empty generation cannot turn a whole column into NaN.
    """
    finite = sorted(float(v) for v in values if math.isfinite(float(v)))
    dropped = len(values) - len(finite)
    if not finite:
        nan = math.nan
        return {"n": 0, "dropped": dropped, "mean": nan, "std": nan, "median": nan, "min": nan, "max": nan}
    n = len(finite)
    mean = math.fsum(finite) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else 0.0
    mid = n // 2
    median = finite[mid] if n % 2 else (finite[mid - 1] + finite[mid]) / 2.0
    return {
        "n": n,
        "dropped": dropped,
        "mean": mean,
        "std": std,
        "median": median,
        "min": finite[0],
        "max": finite[-1],
    }


def mean_bit_accuracy(expected: Sequence[int], decoded: Sequence[int | None], bits: int) -> float:
    """Average :func:`bit_accuracy` over paired payloads (abstentions at 0.5, as documented there)."""
    if len(expected) != len(decoded):
        raise ConfigError(
            f"expected ({len(expected)}) and decoded ({len(decoded)}) payload lists differ in length; "
            "pair each decoded payload with the payload that was embedded"
        )
    if not expected:
        raise ConfigError("no payloads given; decode at least one text before averaging")
    return math.fsum(bit_accuracy(e, d, bits) for e, d in zip(expected, decoded, strict=True)) / len(expected)
