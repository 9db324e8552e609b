"""A conversion cache: turn a source file (a GGUF) into a folder once, then reuse the folder.

Why this shape:
- *Atomic*: the converter writes into a temporary sibling folder that is renamed into place only when
  complete, so a crash or Ctrl-C never leaves a half-written model behind that a later load would trust.
- *One converter at a time*: an exclusive ``flock`` on a lock file serialises conversions across
  processes (two ``pytest`` runs, a test run and ``make demo``); readers hold a shared lock while loading
  so a conversion never swaps the folder out from under them.
- *Invalidated when the source changes*: a marker JSON inside the folder records the source's path, size and
  mtime (cheap to check on every load, unlike hashing 100 MB) plus the converter's own settings.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

CACHE_FORMAT = 1
MARKER_NAME = "safework-cache.json"
CURRENT_NAME = "current"
LOCK_NAME = ".lock"


@dataclass(frozen=True)
class CacheEntry:
    """A usable converted folder; ``hit`` is False when this call had to convert it."""

    path: Path
    hit: bool
    marker: Mapping[str, Any]


def source_fingerprint(source: Path) -> dict[str, Any]:
    """What identifies a version of the source file: resolved path, size and modification time."""
    stat = source.stat()
    return {"source": str(source.resolve()), "source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a converted folder, or None when there is none or it is unreadable."""
    try:
        data = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _expected(source: Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {"format": CACHE_FORMAT, **source_fingerprint(source), "settings": dict(settings)}


def _is_valid(folder: Path, expected: Mapping[str, Any], required: tuple[str, ...]) -> dict[str, Any] | None:
    marker = read_marker(folder)
    if marker is None or any(marker.get(key) != value for key, value in expected.items()):
        return None
    if not all((folder / name).exists() for name in required):
        return None
    return marker


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[TextIO]:
    with open(root / LOCK_NAME, "a+", encoding="utf-8") as handle:
        try:
            yield handle
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _publish(root: Path, built: Path) -> Path:
    """Rename a finished folder into place, retiring the previous one (called under the exclusive lock)."""
    current = root / CURRENT_NAME
    if current.exists():
        stale = root / f".stale-{os.getpid()}-{time.monotonic_ns()}"
        current.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    built.rename(current)
    return current


def _convert(
    root: Path,
    source: Path,
    expected: Mapping[str, Any],
    convert: Callable[[Path], None],
) -> dict[str, Any]:
    # Leftovers of a killed conversion are never trusted; clear them while we hold the exclusive lock.
    for leftover in root.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    building.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache ($SAFEWORK_CACHE_DIR) from other users
    try:
        started = time.perf_counter()
        convert(building)
        marker = {
            **expected,
            "seconds": round(time.perf_counter() - started, 3),
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (building / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _publish(root, building)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return marker


@contextlib.contextmanager
def cached_conversion(
    root: Path,
    source: Path,
    convert: Callable[[Path], None],
    *,
    settings: Mapping[str, Any] | None = None,
    required: tuple[str, ...] = (),
    force: bool = False,
) -> Iterator[CacheEntry]:
    """Yield a valid converted folder for ``source`` under ``root``, converting it first if needed.

    ``convert(folder)`` fills an empty folder; it runs at most once across concurrent callers. ``settings``
    (JSON-serialisable) are part of the cache key, e.g. the stored dtype. ``required`` names files that must
    exist for the folder to count as complete. The folder stays valid (shared lock) until the block exits,
    so load from it inside the ``with``. ``force`` reconverts even a valid folder.
    """
    root.mkdir(parents=True, exist_ok=True)
    expected = _expected(source, settings or {})
    current = root / CURRENT_NAME
    with _lock(root) as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        marker = None if force else _is_valid(current, expected, required)
        hit = marker is not None
        if marker is None:
            # Upgrade to exclusive, then check again: another process may have converted meanwhile.
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            marker = None if force else _is_valid(current, expected, required)
            hit = marker is not None
            if marker is None:
                marker = _convert(root, source, expected, convert)
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        yield CacheEntry(path=current, hit=hit, marker=marker)
