"""Choosing native or reference for one call, according to ``SAFEWORK_OPS`` and what the build offers."""

from __future__ import annotations

import warnings
from types import ModuleType

import torch

from safework.core.errors import NativeOpError
from safework.core.ops.builder import default_builder, first_error_line
from safework.core.ops.mode import OpsMode, ops_mode


class NativeOpFallbackWarning(RuntimeWarning):
    """A native op is unusable here, so the pure-torch reference runs instead (slower, same results)."""


def _fall_back(mode: OpsMode, key: str, reason: str) -> None:
    """Raise under ``native``; under ``auto`` warn once per reason and let the caller use the reference."""
    if mode is OpsMode.NATIVE:
        raise NativeOpError(
            f"{reason}. SAFEWORK_OPS=native forbids the reference fallback; fix the cause, or "
            "set SAFEWORK_OPS=auto (fallback with a warning) or SAFEWORK_OPS=reference."
        )
    if default_builder().warn_once(key):
        warnings.warn(
            f"safework: {reason}; using the pure-torch reference instead (same results, slower). "
            "Set SAFEWORK_OPS=reference to silence this, or run `safework ops build --all` to see the error.",
            NativeOpFallbackWarning,
            stacklevel=4,
        )


def native_module(op: str, device: torch.device) -> ModuleType | None:
    """The extension module to run ``op`` on ``device`` with, or None to run the reference."""
    mode = ops_mode()
    if mode is OpsMode.REFERENCE:
        return None
    if device.type not in ("cpu", "cuda"):
        _fall_back(
            mode, f"{op}:device:{device.type}", f"native op {op!r} has no kernel for device {device.type}"
        )
        return None
    builder = default_builder()
    try:
        module = builder.load(op)
    except NativeOpError as exc:
        if mode is OpsMode.NATIVE:
            raise
        _fall_back(mode, f"{op}:build", f"native op {op!r} could not be built ({first_error_line(exc)})")
        return None
    if device.type == "cuda" and not module.with_cuda():
        _fall_back(
            mode,
            f"{op}:cuda",
            f"native op {op!r} was built without CUDA (torch CUDA or nvcc missing at build time)",
        )
        return None
    return module
