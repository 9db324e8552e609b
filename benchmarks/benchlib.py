"""Small helpers every benchmark script shares (standard library only, so GPU-box scripts can use it too)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call (allocator, thread pools, caches)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_label(threads: int) -> str:
    """What the figures were measured on: CPU, core count and the torch thread count used."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch threads {threads}"


def parse_config(text: str) -> tuple[str, dict[str, Any]]:
    """``SCHEME`` or ``SCHEME:opt=value,opt=value`` -> (name, options); numbers become int or float."""
    name, _, rest = text.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[key] = float(value) if "." in value else int(value)
    return name, options
