"""Per-seed calibration of the attribution p-value: an empirical null on human text plus a fitted tail.

Why not the decoder's p-value alone. It is exact *averaged over keys*: for a fixed text, a random key's
p-value is uniform. An attribution, though, tests texts against one fixed seed, and under one key the texts
share their common contexts ("of the", ", and") and so the permutations those contexts pick; their
p-values move together and one seed's false-positive rate on human text can be several times the nominal
level either way. No analytic correction can remove this per key: the randomness the decoder integrates
over (which permutation each context picks) is fixed once the seed is, and what remains is the
randomness of human text, which only data describe.

So each seed is scored on a fixed human corpus when its grant arrives (the proxy pass over the corpus does
not depend on the key, so :class:`HumanCorpus` computes it once per vendor and model; only the keyed hashing
runs per seed), and a text's raw p-value is turned into a score s = -ln p and compared with that null:

* body, exact: p = (1 + #{null scores >= s}) / (n + 1). For a text exchangeable with the corpus this is a
  valid p-value for this seed (a conformal / permutation p-value; the +1 counts the text itself). It cannot
  go below 1 / (n + 1).
* tail, modelled: attribution needs far smaller levels (alpha = 1e-3 Bonferroni-corrected over dozens of
  candidates is ~3e-5 per seed). Above the (k+1)-th largest null score u, the k exceedances are fitted with
  an exponential tail (a generalised Pareto tail of shape 0, the usual model for extrapolating permutation
  p-values; in s it is also the decoder's own shape: a uniform p gives s ~ Exp(1)) and
  p = (k + 1) / (n + 1) * exp(-beta * (s - u)), where beta is the one-sided 95 % *lower* confidence bound of
  the fitted rate (a heavier tail than the fit) and never above 1, so far beyond the data the calibrated
  p-value falls no faster than the decoder's. It is used alone only beyond the largest null score; where
  the null still has scores at or above s the result is the larger of the two, so it is never below the
  exact rank p-value there.

Down to 1 / (n + 1) the result is a finite-sample guarantee; below it, the tail is an assumption
(exponential decay of -ln p), made conservative by the bound and the cap. The guarantee is marginal over
the corpus draw: for one fixed corpus a seed's false-positive rate at level a scatters around a by about
sqrt(a / n). It also assumes the text is exchangeable with the corpus, so calibrate on text of the kind and
length that gets attributed.

Why this and not a fixed correction, from measurement (benchmarks/RESULTS.md, "per-seed calibration"; 8
seeds, 1000 + 1000 human passages): the decoder's presence p-value is conservative on average (Bonferroni
over candidates) but unevenly. Per seed its rate at 1e-2 is 0.25-0.75x nominal. The fitted tail rates of
-ln p range from 0.73 to 1.0, so one factor would either waste power on most seeds or under-correct the
heavy-tailed ones. Calibrated, no seed's held-out rate at 1e-2 (0.1-1.3 %) is significantly above 1e-2.
A 200-text calibration, where 1e-3 is answered by the tail alone, gave 2 of 8000 at 1e-3.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import torch

from safework.watermark.errors import WatermarkInputError
from safework.watermark.keys import WatermarkKey

if TYPE_CHECKING:
    from safework.watermark.engine import Watermarker

CALIBRATION_FORMAT = "safework-seed-calibration"
CALIBRATION_VERSION = 1
MIN_TEXTS = 100  # fewer gives a body too coarse (1 / (n + 1)) and a tail fitted on < 10 points
DEFAULT_TAIL = 100  # exceedances the tail is fitted on (at most a tenth of the corpus)
TAIL_CONFIDENCE = 0.95
_FLOOR = 1e-300


def score(raw_p_value: float) -> float:
    """The calibration score of a raw p-value: -ln p (larger = more watermark-like)."""
    value = float(raw_p_value)
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise WatermarkInputError(f"a p-value lies in [0, 1], got {raw_p_value!r}")
    return -math.log(max(_FLOOR, value))


def calibration_settings(watermarker: Watermarker) -> dict[str, Any]:
    """What a null distribution depends on besides the key: the scheme's settings and the model."""
    return {**watermarker.scheme.settings(), "model": watermarker.loaded.name}


def _rate_lower_bound(exceedances: Sequence[float], confidence: float) -> float:
    """One-sided lower confidence bound of an exponential rate from k exceedances (2 beta S ~ chi2(2k)),
    with the Wilson-Hilferty chi-square quantile (relative error < 1e-3 for k >= 10)."""
    total = sum(exceedances)
    if total <= 0:
        return math.inf
    dof = 2 * len(exceedances)
    z = NormalDist().inv_cdf(1.0 - confidence)
    quantile = dof * max(0.0, 1.0 - 2.0 / (9 * dof) + z * math.sqrt(2.0 / (9 * dof))) ** 3
    return quantile / (2.0 * total)


@dataclass(frozen=True)
class SeedCalibration:
    """One seed's null distribution of the attribution score on human text, and its fitted tail."""

    fingerprint: str
    settings: dict[str, Any]
    scores: tuple[float, ...]  # null scores, sorted descending
    threshold: float  # u: the (k+1)-th largest null score
    exceedances: int  # k
    rate: float  # beta: the tail's decay rate in s (lower confidence bound, at most 1)

    @classmethod
    def fit(
        cls,
        fingerprint: str,
        settings: dict[str, Any],
        raw_p_values: Sequence[float],
        *,
        tail: int = DEFAULT_TAIL,
    ) -> SeedCalibration:
        """Fit from the seed's raw p-values on n >= MIN_TEXTS human texts."""
        n = len(raw_p_values)
        if n < MIN_TEXTS:
            raise WatermarkInputError(
                f"calibration needs at least {MIN_TEXTS} human texts (ideally 1000+), got {n}"
            )
        if not isinstance(tail, int) or tail < 10:
            raise WatermarkInputError(f"tail must be an int >= 10 exceedances, got {tail!r}")
        scores = tuple(sorted((score(p) for p in raw_p_values), reverse=True))
        k = min(tail, n // 10)
        threshold = scores[k]
        rate = min(1.0, _rate_lower_bound([s - threshold for s in scores[:k]], TAIL_CONFIDENCE))
        return cls(fingerprint, dict(settings), scores, threshold, k, rate)

    @property
    def n(self) -> int:
        return len(self.scores)

    def p_value(self, raw_p_value: float) -> float:
        """The seed's calibrated p-value of a text whose decoder p-value is ``raw_p_value``."""
        s = score(raw_p_value)
        # Null scores >= s: the scores are sorted descending, so count the prefix.
        at_least = bisect.bisect_right(self.scores, -s, key=lambda x: -x)
        rank = (1 + at_least) / (self.n + 1)
        if s <= self.threshold:
            return rank
        tail = (self.exceedances + 1) / (self.n + 1) * math.exp(-self.rate * (s - self.threshold))
        # Within the data never below the rank p-value; beyond the largest null score, the model alone.
        return max(tail, rank) if at_least else tail

    def check_settings(self, watermarker: Watermarker) -> None:
        """Refuse to calibrate a watermarker other than the one this null was measured with."""
        current = calibration_settings(watermarker)
        if current != self.settings:
            changed = sorted(
                k for k in current.keys() | self.settings.keys() if current.get(k) != self.settings.get(k)
            )
            raise WatermarkInputError(
                f"calibration of key {self.fingerprint} was made with other settings ({', '.join(changed)}); "
                "recalibrate the seed with this watermarker"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CALIBRATION_FORMAT,
            "version": CALIBRATION_VERSION,
            "fingerprint": self.fingerprint,
            "settings": self.settings,
            "scores": list(self.scores),
            "threshold": self.threshold,
            "exceedances": self.exceedances,
            "rate": self.rate,
        }

    @classmethod
    def from_json(cls, data: Any) -> SeedCalibration:
        """Read :meth:`to_json` output back, refusing anything else."""
        if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
            raise WatermarkInputError(f"not a seed calibration (expected format {CALIBRATION_FORMAT!r})")
        if data.get("version") != CALIBRATION_VERSION:
            raise WatermarkInputError(
                f"seed calibration version {data.get('version')!r}; this safework reads "
                f"{CALIBRATION_VERSION}: recalibrate the seed"
            )
        try:
            scores = tuple(float(s) for s in data["scores"])
            built = cls(
                str(data["fingerprint"]),
                dict(data["settings"]),
                scores,
                float(data["threshold"]),
                int(data["exceedances"]),
                float(data["rate"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WatermarkInputError(f"malformed seed calibration ({exc!r}); recalibrate the seed") from None
        if list(scores) != sorted(scores, reverse=True) or not 0 < built.exceedances < len(scores):
            raise WatermarkInputError("malformed seed calibration (scores unsorted or tail out of range)")
        if not all(math.isfinite(x) and x >= 0 for x in scores):
            raise WatermarkInputError("malformed seed calibration (scores must be finite and >= 0)")
        if not 0 < built.rate <= 1:
            raise WatermarkInputError(f"malformed seed calibration (tail rate {built.rate} not in (0, 1])")
        return built


@dataclass
class HumanCorpus:
    """Human texts and their key-independent extraction work (credid: proxy passes), computed once.

    Keep one per vendor and model to calibrate each new seed with only the keyed hashing; with credid's
    defaults that costs ~0.6 MB of memory per 200-token text (the truncated proxy distributions).
    """

    ids: list[torch.Tensor]
    shared: list[object | None]

    @classmethod
    def build(cls, watermarker: Watermarker, texts: Sequence[Sequence[int] | torch.Tensor]) -> HumanCorpus:
        tensors = _checked(watermarker, texts)
        return cls(tensors, [watermarker.scheme.shared_work(t) for t in tensors])


def _checked(watermarker: Watermarker, texts: Sequence[Sequence[int] | torch.Tensor]) -> list[torch.Tensor]:
    tensors = [torch.as_tensor(t, dtype=torch.int64).reshape(-1) for t in texts]
    short = [i for i, t in enumerate(tensors) if t.numel() <= watermarker.scheme.warmup]
    if short:
        raise WatermarkInputError(
            f"human texts {short[:5]} have at most {watermarker.scheme.warmup} tokens (the warm-up); "
            "calibrate on texts of the length you attribute (e.g. 200 tokens)"
        )
    return [watermarker.scheme.check_ids(t) for t in tensors]


def null_p_values(
    watermarker: Watermarker,
    keys: Sequence[WatermarkKey],
    human: HumanCorpus | Sequence[Sequence[int] | torch.Tensor],
) -> list[list[float]]:
    """The decoder's p-value of every human text under every key: ``[key][text]``.

    Text by text, so the shared work of one text is computed once (or taken from a :class:`HumanCorpus`)
    and dropped before the next.
    """
    if not keys:
        raise WatermarkInputError("no keys to calibrate: pass at least one WatermarkKey")
    schemes = [watermarker.scheme.rekeyed(k) for k in keys]
    pairs: Iterable[tuple[torch.Tensor, object | None]]
    if isinstance(human, HumanCorpus):
        pairs = zip(human.ids, human.shared, strict=True)
    else:
        pairs = ((t, watermarker.scheme.shared_work(t)) for t in _checked(watermarker, human))
    out: list[list[float]] = [[] for _ in keys]
    for ids, shared in pairs:
        for row, scheme in zip(out, schemes, strict=True):
            row.append(watermarker.decode(scheme.keyed_evidence(ids, shared)).p_value)
    return out


def calibrate(
    watermarker: Watermarker,
    keys: Sequence[WatermarkKey],
    human: HumanCorpus | Sequence[Sequence[int] | torch.Tensor],
    *,
    tail: int = DEFAULT_TAIL,
) -> dict[str, SeedCalibration]:
    """Each key's :class:`SeedCalibration` on the human texts, by key fingerprint."""
    settings = calibration_settings(watermarker)
    raw = null_p_values(watermarker, keys, human)
    return {
        k.fingerprint(): SeedCalibration.fit(k.fingerprint(), settings, p, tail=tail)
        for k, p in zip(keys, raw, strict=True)
    }
