"""A sample third-party plugin: one component for every safework hook."""

from __future__ import annotations

from collections.abc import Sequence

import click

from safework.core.hookspecs import hookimpl
from safework.core.types import VerifierScore
from safework.verifiers import Verifier, VerifierItem


class LengthVerifier(Verifier):
    """Scores a response by how close its length is to 100 characters (a simple principle, real behaviour)."""

    principle = "length"
    labels = ("on_target", "off_target")

    def score_one(self, response: str) -> float:
        return max(0.0, 1.0 - abs(len(response) - 100) / 100)

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        scores = [self.score_one(item.response) for item in items]
        return [
            VerifierScore(
                self.principle, "on_target" if s >= 0.5 else "off_target", s, raw={"chars": len(i.response)}
            )
            for s, i in zip(scores, items, strict=True)
        ]


def shout_attack(text: str, strength: float, rng: object) -> str:
    """Upper-cases the first `strength` fraction of the words."""
    words = text.split()
    cut = int(len(words) * strength)
    return " ".join([w.upper() for w in words[:cut]] + words[cut:])


def mean_centred(batch) -> list[float]:  # type: ignore[no-untyped-def]
    """Advantage = reward minus its group's mean (the batch contract: ``batch.rewards``, ``batch.groups``)."""
    rewards, groups = batch.rewards.tolist(), batch.groups.tolist()
    sums: dict[int, list[float]] = {}
    for r, g in zip(rewards, groups, strict=True):
        sums.setdefault(g, []).append(r)
    means = {g: sum(v) / len(v) for g, v in sums.items()}
    return [r - means[g] for r, g in zip(rewards, groups, strict=True)]


class NullScheme:
    """A watermark scheme that embeds nothing (a control for evaluations)."""

    name = "sample-null"


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("sample-hello")
    @click.argument("who", default="world")
    def hello(who: str) -> None:
        """Say hello (proves a third-party command was added)."""
        click.echo(f"hello {who} from the sample plugin")


def _proverbs(_archive: object) -> list[dict[str, str]]:
    lines = ["A stitch in time saves nine.", "Many hands make light work.", "Still waters run deep."]
    return [{"text": line, "source": "sample-plugin"} for line in lines]


@hookimpl
def register_datasets(register):  # type: ignore[no-untyped-def]
    from safework.core.data import Dataset

    register("sample-proverbs", Dataset("sample-proverbs", "passages", "Three proverbs.", "CC0", _proverbs))


@hookimpl
def register_verifiers(register):  # type: ignore[no-untyped-def]
    register("sample-length", LengthVerifier)


@hookimpl
def register_watermark_schemes(register):  # type: ignore[no-untyped-def]
    register("sample-null", NullScheme)


@hookimpl
def register_attacks(register):  # type: ignore[no-untyped-def]
    register("sample-shout", shout_attack)


@hookimpl
def register_advantage_estimators(register):  # type: ignore[no-untyped-def]
    register("sample-mean-centred", mean_centred)
