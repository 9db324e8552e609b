"""One exception hierarchy for all of safework.

Every message says what was wrong *and* how to fix it; the CLI prints `str(error)` and exits non-zero, so a
message is the whole user-facing explanation.
"""

from __future__ import annotations


class SafeworkError(Exception):
    """Root of every error safework raises on purpose."""

    exit_code = 1


class ConfigError(SafeworkError):
    """A setting, environment variable or argument has a value safework cannot use."""

    exit_code = 2


class PluginError(SafeworkError):
    """A plugin failed to load, or two plugins registered the same name."""


class ModelLoadError(SafeworkError):
    """A model or tokenizer could not be found or loaded."""


class VocabularyMismatchError(ModelLoadError):
    """The tokenizer produces ids the model's output layer cannot score."""


class DataUnavailableError(SafeworkError):
    """A catalogue data set is not cached and cannot be fetched (offline, or the carrier is missing)."""


class IntegrityError(SafeworkError):
    """A downloaded archive does not match its pinned sha256."""


class NativeOpError(SafeworkError):
    """A native op could not be built or loaded, and the reference path was not allowed."""


class RpcError(SafeworkError):
    """A gRPC server or client could not be set up as asked."""
