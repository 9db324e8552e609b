"""Find verifiers by name: built-ins and third-party plugins alike come through ``register_verifiers``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from safework.core.errors import PluginError
from safework.core.plugins import collect
from safework.verifiers.base import Verifier

VerifierFactory = Callable[..., Verifier]


def available_verifiers() -> dict[str, VerifierFactory]:
    """Every registered verifier factory by name."""
    return collect("register_verifiers")


def get_verifier(name: str, **options: Any) -> Verifier:
    """Instantiate the verifier registered as ``name`` with keyword ``options``."""
    factories = available_verifiers()
    if name not in factories:
        known = ", ".join(sorted(factories)) or "none"
        raise PluginError(
            f"no verifier named {name!r} is registered (known: {known}); "
            "check `safework verifiers list`, or install the plugin that provides it"
        )
    verifier = factories[name](**options)
    if not isinstance(verifier, Verifier):
        raise PluginError(
            f"verifier {name!r} produced a {type(verifier).__name__}, not a safework.verifiers.Verifier"
        )
    return verifier
