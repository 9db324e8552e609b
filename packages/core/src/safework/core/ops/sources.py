"""Finding the ``csrc/`` tree the native ops are compiled from.

Two layouts must work: an editable checkout (the sources live at the repository root, several folders above
the package) and an installed wheel (the core distribution force-includes ``csrc/`` as package data at
``safework/core/csrc``). Package data wins when present, because an installed wheel must build the sources
it shipped with, not whatever checkout happens to sit above site-packages.
"""

from __future__ import annotations

from pathlib import Path

from safework.core.errors import NativeOpError

# A file every valid source tree has; it tells a real csrc/ from an unrelated folder of the same name.
MARKER = Path("core") / "bindings.cpp"


def _is_source_root(path: Path) -> bool:
    return (path / MARKER).is_file()


def find_source_root(core_dir: Path | None = None) -> Path:
    """The ``csrc`` folder for the package at ``core_dir`` (default: this installed ``safework.core``)."""
    core = (core_dir or Path(__file__).resolve().parent.parent).resolve()
    packaged = core / "csrc"
    if _is_source_root(packaged):
        return packaged
    for parent in core.parents:
        candidate = parent / "csrc"
        if _is_source_root(candidate):
            return candidate
    raise NativeOpError(
        f"cannot find the native sources: neither {packaged} (installed wheel) nor a csrc/ folder above "
        f"{core} (editable checkout) contains {MARKER.as_posix()}. Reinstall safework-core from a wheel or "
        "a full checkout, or set SAFEWORK_OPS=reference to use the pure-torch implementations."
    )
