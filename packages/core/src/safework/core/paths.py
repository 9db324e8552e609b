"""Where safework keeps its caches (converted models, downloaded data archives, built native ops).

One root, overridable with ``SAFEWORK_CACHE_DIR`` so CI and tests can point it at a scratch or shared folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV = "SAFEWORK_CACHE_DIR"


def cache_root() -> Path:
    """The cache root: ``$SAFEWORK_CACHE_DIR`` if set, else the platform user cache dir."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured).expanduser() if configured else Path(platformdirs.user_cache_dir("safework"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    """A sub-folder of the cache root, created on demand."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
