"""Hook specifications: the whole plugin surface of safework, in the order a run calls them.

A plugin is a module (or object) with functions decorated by :data:`hookimpl` whose names match the specs
below. Third-party plugins are found through the ``safework`` entry-point group; the built-in packages
(verifiers, rl, watermark) are plugins of core in exactly the same way.

Every ``register_*`` hook receives a ``register(name, component)`` callback, in the style of simonw/llm: the
plugin calls it once per component it contributes. Names must be unique within a hook; a clash is a
:class:`~safework.core.errors.PluginError` naming both plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import pluggy

PROJECT = "safework"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[str, Any], None]


# 1. Start-up: the CLI is assembled before anything else runs.
@hookspec
def register_commands(cli: click.Group) -> None:
    """Add a command or command group to the ``safework`` CLI.

    Called once when the CLI starts. Each package adds its own group (``safework verifiers ...``,
    ``safework watermark ...``); use ``cli.add_command`` or the ``@cli.group()`` decorator.
    """


# 2. Data: the catalogue asks for data sets when it is first listed or read.
@hookspec
def register_datasets(register: Register) -> None:
    """Contribute data sets to the catalogue (``safework data list``).

    ``register(name, dataset)`` where ``dataset`` is a :class:`safework.core.data.Dataset`.
    Core registers its registry-carried sets through this same hook.
    """


# 3. Components, collected the first time a package asks for them.
@hookspec
def register_verifiers(register: Register) -> None:
    """Contribute verifiers (safety, value, knowledge, rule-based, judges, third-party).

    ``register(name, verifier_factory)``; the factory is called with keyword options and returns an object
    implementing the verifier interface of ``safework.verifiers``.
    """


@hookspec
def register_watermark_schemes(register: Register) -> None:
    """Contribute watermark schemes (credid, kgw, mpac, ctwl-hash, third-party).

    ``register(name, scheme_factory)``; the factory returns an object implementing the scheme interface of
    ``safework.watermark``.
    """


@hookspec
def register_attacks(register: Register) -> None:
    """Contribute text attacks used by watermark robustness evaluation.

    ``register(name, attack)`` where ``attack(text, strength, rng) -> str``.
    """


@hookspec
def register_advantage_estimators(register: Register) -> None:
    """Contribute RL advantage estimators (group-normalised, CALE, third-party).

    ``register(name, estimator)`` where ``estimator(batch, **options) -> advantages``: ``batch`` is
    ``safework.rl.advantages.AdvantageBatch`` (``rewards``, ``groups``, ``lengths``, optional ``correct``, one
    row per response) and the result holds one advantage per row (a tensor or a list of floats). Options
    come from the run config's ``estimator_options``.
    """
