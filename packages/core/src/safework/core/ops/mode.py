"""The ``SAFEWORK_OPS`` switch: which implementation of a native op runs.

``auto`` (default) is what users want: native speed, and if the build fails the pure-torch reference with one
warning instead of a crash. ``native`` is for CI and benchmarks that must not silently measure the reference.
``reference`` is for machines without a compiler and for debugging a kernel against its ground truth.
"""

from __future__ import annotations

import enum
import os

from safework.core.errors import ConfigError

OPS_ENV = "SAFEWORK_OPS"


class OpsMode(enum.Enum):
    """Where op calls go (see the module docstring)."""

    AUTO = "auto"
    NATIVE = "native"
    REFERENCE = "reference"


def ops_mode() -> OpsMode:
    """The mode ``$SAFEWORK_OPS`` asks for; read on every call so a change takes effect at once."""
    raw = os.environ.get(OPS_ENV, "").strip().lower()
    if not raw:
        return OpsMode.AUTO
    try:
        return OpsMode(raw)
    except ValueError:
        choices = ", ".join(m.value for m in OpsMode)
        raise ConfigError(
            f"{OPS_ENV}={os.environ[OPS_ENV]!r} is not a valid value; set it to one of {choices} "
            f"(or unset it for auto)"
        ) from None
