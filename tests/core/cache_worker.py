"""Helpers for the conversion-cache tests that run in spawned processes.

Kept apart from ``test_models.py`` so that a spawned child imports only this file and the cache module,
not torch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from safework.core.models.cache import cached_conversion


class FileConverter:
    """A fake converter: writes ``config.json`` and ``weights.bin``, and appends a line to ``calls``.

    The call count lives in a file so that it adds up across processes.
    """

    def __init__(self, calls: Path, delay: float = 0.0, fail: bool = False) -> None:
        self.calls = calls
        self.delay = delay
        self.fail = fail

    def __call__(self, out: Path) -> None:
        with self.calls.open("a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
        (out / "config.json").write_text('{"fake": true}\n', encoding="utf-8")
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("converter crashed half-way")
        (out / "weights.bin").write_bytes(bytes(1 << 16))

    @property
    def count(self) -> int:
        return len(self.calls.read_text(encoding="utf-8").splitlines()) if self.calls.exists() else 0


def convert_in_process(root: Path, source: Path, calls: Path, delay: float, start: Any, results: Any) -> None:
    """Child process body: wait for the others, then load through the cache and report what was seen."""
    try:
        start.wait(timeout=120)
        with cached_conversion(
            root, source, FileConverter(calls, delay=delay), required=("config.json", "weights.bin")
        ) as entry:
            complete = (entry.path / "config.json").is_file() and (entry.path / "weights.bin").stat().st_size
            seen = {"hit": entry.hit, "path": str(entry.path), "complete": bool(complete), "error": None}
        results.put(seen)
    except BaseException as exc:  # reported to the parent, which fails the test
        results.put({"hit": None, "path": None, "complete": False, "error": repr(exc)})
