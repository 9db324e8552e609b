"""The verifiers package as a plugin of core: contributes the ``safework verifiers`` CLI group."""

from __future__ import annotations

import click

from safework.core.hookspecs import Register, hookimpl
from safework.core.registry_cli import listing_command
from safework.verifiers.commands.score import score_command
from safework.verifiers.commands.serve import serve
from safework.verifiers.commands.train import train_command


@click.group("verifiers")
def verifiers_group() -> None:
    """Multi-principled verifiers and the reward server."""


verifiers_group.add_command(listing_command("register_verifiers", "verifiers"))
verifiers_group.add_command(score_command)
verifiers_group.add_command(train_command)
verifiers_group.add_command(serve)


@hookimpl
def register_verifiers(register: Register) -> None:
    from safework.verifiers.general import GeneralVerifier
    from safework.verifiers.judge import JudgeVerifier
    from safework.verifiers.knowledge import KnowledgeVerifier
    from safework.verifiers.neural import KeywordSafetyVerifier, NormalVerifier, SafetyVerifier, ValueVerifier
    from safework.verifiers.rules import (
        FormatVerifier,
        LanguageConsistencyVerifier,
        LengthVerifier,
        MathAnswerVerifier,
    )

    register("safety", SafetyVerifier)
    register("value", ValueVerifier)
    register("normal", NormalVerifier)
    register("safety-keyword", KeywordSafetyVerifier)
    register("knowledge", KnowledgeVerifier)
    register("general", GeneralVerifier)
    register("format", FormatVerifier)
    register("math-answer", MathAnswerVerifier)
    register("length", LengthVerifier)
    register("language-consistency", LanguageConsistencyVerifier)
    register("judge", JudgeVerifier)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(verifiers_group)
