"""Watermark errors: each says what was wrong and how to fix it (the CLI prints them and exits non-zero)."""

from __future__ import annotations

from safework.core.errors import ConfigError, SafeworkError


class KeyFileError(ConfigError):
    """A watermark key file is missing, unreadable, or holds a key of the wrong length."""


class WatermarkInputError(ConfigError):
    """A text, payload or option handed to a scheme cannot be used (empty, too short, out of range)."""


class UnknownSchemeError(ConfigError):
    """No scheme is registered under the requested name."""


class WatermarkError(SafeworkError):
    """Embedding or extraction failed for a reason that is not the caller's input."""
