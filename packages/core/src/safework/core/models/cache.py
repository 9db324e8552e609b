"""A conversion cache: turn a source file (a GGUF) into a folder once, then reuse the folder.

A cache root holds::

    sources.json             side index: source path + stat -> sha256 of its bytes
    <sha256[:16]>-<setup>/   one finished conversion per source content (and converter settings)
    .lock                    the flock every reader and converter takes

Why this shape:
- *Keyed by content, not path*: a folder is named after the sha256 of the source's bytes plus the converter's
  settings and ``CACHE_FORMAT``. The same GGUF installed in two virtualenvs (a fresh clone's and the main
  one) is one conversion and a hit from both; different contents sit side by side instead of evicting each
  other on every load, so two checkouts with different wheels never reconvert in turn.
- *Hashed once per file version*: reading 100-300 MB on every load is wasted work, so the side index remembers
  the hash under the file's path, size, mtime, ctime and inode, and a file is read again only when one of
  them changes (a change in the same timestamp tick as the hashing is caught by not remembering files
  written in the last seconds). The index is replaced atomically, and a missing or corrupt one only means
  hashing again.
- *Atomic*: the converter writes into a temporary sibling folder that is renamed into place only when
  complete, so a crash or Ctrl-C never leaves a half-written model behind that a later load would trust.
- *One converter at a time*: an exclusive ``flock`` on the lock file serialises conversions across processes
  (two ``pytest`` runs, a test run and ``make demo``, several vendor processes); a process that waited for
  it checks again and reuses the folder the other one made. Readers hold a shared lock while loading, so a
  forced reconversion never replaces a folder under them.
- *Garbage*: leftovers of killed conversions (``.tmp-*``) and the single ``current`` folder of the previous
  layout are cleared under the exclusive lock. Folders of older contents stay, as another checkout may still
  use them; delete the cache root (``$SAFEWORK_CACHE_DIR/models/<name>``) while no model is loading to
  reclaim the space. ``safework model convert --force`` reconverts the current content only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

CACHE_FORMAT = 2
MARKER_NAME = "safework-cache.json"
INDEX_NAME = "sources.json"
LOCK_NAME = ".lock"
CURRENT_NAME = "current"  # the one swapped folder of format 1; removed by the next conversion in its root
_RACY_NS = 2_000_000_000  # a file written this recently could change again within the same mtime tick
_STALE_INDEX_TEMP_S = 3600


@dataclass(frozen=True)
class CacheEntry:
    """A usable converted folder; ``hit`` is False when this call had to convert it."""

    path: Path
    hit: bool
    marker: Mapping[str, Any]


def _signature(source: Path) -> dict[str, int]:
    stat = source.stat()
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
    }


def _hash_file(source: Path) -> str:
    with source.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _read_index(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / INDEX_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(root: Path, key: str, entry: dict[str, Any]) -> None:
    """Add one source to the side index (read, merge, atomic replace); entries of deleted files are dropped.

    Runs without the lock: two writers at once can lose one entry, which only costs a rehash later.
    """
    index = {path: known for path, known in _read_index(root).items() if os.path.exists(path)}
    index[key] = entry
    try:
        fd, temp = tempfile.mkstemp(prefix=".sources-", suffix=".json", dir=root)
    except OSError:
        return  # a read-only cache still serves hits; the index is only a hint
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(index, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(temp, 0o644)  # mkstemp's 0600 would hide a shared cache's index from other users
        os.replace(temp, root / INDEX_NAME)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def source_digest(source: Path, index_root: Path | None = None) -> str:
    """The sha256 of ``source``'s bytes.

    With ``index_root``, the hash is remembered in its side index under the file's path and stat, and an
    unchanged file is not read again.
    """
    key = str(source.resolve())
    signature = _signature(source)
    if index_root is not None:
        known = _read_index(index_root).get(key)
        if (
            isinstance(known, dict)
            and _is_sha256(known.get("sha256"))
            and all(known.get(name) == value for name, value in signature.items())
        ):
            return str(known["sha256"])
    stable = False
    for _ in range(3):  # a file that changes while it is read is read again
        digest = _hash_file(source)
        after = _signature(source)
        stable, signature = after == signature, after
        if stable:
            break
    recent = time.time_ns() - signature["mtime_ns"] < _RACY_NS
    if index_root is not None and stable and not recent:
        _remember(index_root, key, {**signature, "sha256": digest})
    return digest


def source_fingerprint(source: Path, index_root: Path | None = None) -> dict[str, Any]:
    """What identifies a version of the source file: the sha256 of its bytes and its size."""
    digest = source_digest(source, index_root)
    return {"source_sha256": digest, "source_size": source.stat().st_size}


def content_key(digest: str, settings: Mapping[str, Any] | None = None) -> str:
    """The folder name of a conversion: the content hash, then a short hash of the settings and format."""
    setup = json.dumps({"format": CACHE_FORMAT, "settings": dict(settings or {})}, sort_keys=True)
    return f"{digest[:16]}-{hashlib.sha256(setup.encode()).hexdigest()[:8]}"


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a converted folder, or None when there is none or it is unreadable."""
    try:
        data = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _expected(root: Path, source: Path, settings: Mapping[str, Any]) -> tuple[Path, dict[str, Any]]:
    fingerprint = source_fingerprint(source, root)
    expected = {"format": CACHE_FORMAT, **fingerprint, "settings": dict(settings)}
    return root / content_key(fingerprint["source_sha256"], settings), expected


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


def _retire(root: Path, folder: Path) -> None:
    """Move a folder out of the way, then delete it (called under the exclusive lock)."""
    if folder.exists():
        stale = root / f".stale-{os.getpid()}-{time.monotonic_ns()}"
        folder.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)


def _clear_leftovers(root: Path) -> None:
    """Clear what killed conversions and the previous layout left behind (under the exclusive lock)."""
    for pattern in (".tmp-*", ".stale-*"):
        for leftover in root.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
    _retire(root, root / CURRENT_NAME)
    for temp in root.glob(".sources-*.json"):  # index writes run unlocked: only clear old ones
        with contextlib.suppress(OSError):
            if time.time() - temp.stat().st_mtime > _STALE_INDEX_TEMP_S:
                temp.unlink()


def _convert(
    root: Path,
    folder: Path,
    source: Path,
    expected: Mapping[str, Any],
    convert: Callable[[Path], None],
) -> dict[str, Any]:
    _clear_leftovers(root)
    building = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    building.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache ($SAFEWORK_CACHE_DIR) from other users
    try:
        started = time.perf_counter()
        convert(building)
        marker = {
            **expected,
            "converted_from": str(source.resolve()),  # informational: any file with these bytes may use it
            "seconds": round(time.perf_counter() - started, 3),
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (building / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _retire(root, folder)  # an incomplete or forced-out copy of the same content
        building.rename(folder)
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
    """Yield a valid converted folder for ``source``'s content under ``root``, converting it first if needed.

    ``convert(folder)`` fills an empty folder; it runs at most once across concurrent callers, and callers
    that waited for it get its folder with ``hit`` True. ``settings`` (JSON-serialisable) are part of the
    cache key, e.g. the stored dtype. ``required`` names files that must exist for the folder to count as
    complete. The folder stays valid (shared lock) until the block exits, so load from it inside the
    ``with``. ``force`` reconverts even a valid folder.
    """
    root.mkdir(parents=True, exist_ok=True)
    settings = dict(settings or {})
    folder, expected = _expected(root, source, settings)
    with _lock(root) as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        marker = None if force else _is_valid(folder, expected, required)
        hit = marker is not None
        if marker is None:
            # Upgrade to exclusive, then check again: another process may have converted meanwhile.
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            marker = None if force else _is_valid(folder, expected, required)
            hit = marker is not None
            if marker is None:
                marker = _convert(root, folder, source, expected, convert)
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        yield CacheEntry(path=folder, hit=hit, marker=marker)


@contextlib.contextmanager
def cached_folder(
    root: Path,
    source: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    required: tuple[str, ...] = (),
) -> Iterator[CacheEntry | None]:
    """Like :func:`cached_conversion` without converting: the valid folder for ``source``, or None."""
    if not root.is_dir():
        yield None
        return
    settings = dict(settings or {})
    folder, expected = _expected(root, source, settings)
    with _lock(root) as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        marker = _is_valid(folder, expected, required)
        yield None if marker is None else CacheEntry(path=folder, hit=True, marker=marker)
