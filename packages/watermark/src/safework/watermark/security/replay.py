"""Replay protection: a signed request is accepted once; its nonce is remembered for as long as its
timestamp would still pass the skew check, and no longer (so memory stays bounded).

The TTP uses a durable guard over its store (``remember_nonce``) so that a restart does not reopen the
window; :class:`MemoryReplayGuard` serves a single process (the vendor service, tests).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from safework.core.errors import ConfigError

log = logging.getLogger("safework.watermark.security")


@runtime_checkable
class ReplayGuard(Protocol):
    """Records nonces per client; implementations must be safe to call from many threads."""

    def remember(self, client_id: str, nonce: bytes, timestamp: float) -> bool:
        """Record ``nonce`` of ``client_id`` (``timestamp``: the request's Unix seconds); False if it was
        already recorded, or cannot be vouched for (too old to still be remembered, or the guard is full)."""
        ...


class MemoryReplayGuard:
    """In-process guard: forgets a nonce once its request time is more than ``window_s`` in the past.

    ``window_s`` must be at least the verifier's allowed clock skew (``check_request(max_skew_s=...)``);
    a request older than the window is refused outright, since a replay of it could no longer be detected.
    Memory is bounded by the window times the request rate; ``max_entries`` is a hard cap beyond which new
    nonces are refused (fail closed) until old ones expire.
    """

    def __init__(
        self, window_s: float, *, max_entries: int = 1_000_000, clock: Callable[[], float] = time.time
    ) -> None:
        if not window_s > 0:
            raise ConfigError(
                f"window_s must be positive seconds (at least the allowed skew), got {window_s!r}."
            )
        if max_entries < 1:
            raise ConfigError(f"max_entries must be at least 1, got {max_entries!r}.")
        self.window_s = float(window_s)
        self.max_entries = max_entries
        self._clock = clock
        self._seen: dict[tuple[str, bytes], float] = {}
        self._expiry: list[tuple[float, str, bytes]] = []  # min-heap by request time
        self._lock = threading.Lock()

    def _forget_before(self, cutoff: float) -> None:
        while self._expiry and self._expiry[0][0] < cutoff:
            timestamp, client_id, nonce = heapq.heappop(self._expiry)
            if self._seen.get((client_id, nonce)) == timestamp:
                del self._seen[(client_id, nonce)]

    def remember(self, client_id: str, nonce: bytes, timestamp: float) -> bool:
        cutoff = self._clock() - self.window_s
        key = (client_id, bytes(nonce))
        with self._lock:
            self._forget_before(cutoff)
            if timestamp < cutoff or key in self._seen:
                return False
            if len(self._seen) >= self.max_entries:
                log.warning(
                    "replay guard full (%d nonces within %.0f s); refusing requests until old ones expire",
                    self.max_entries,
                    self.window_s,
                )
                return False
            self._seen[key] = timestamp
            heapq.heappush(self._expiry, (timestamp, key[0], key[1]))
            return True

    def __len__(self) -> int:
        """Nonces currently remembered (expired ones are dropped lazily, on the next ``remember``)."""
        with self._lock:
            return len(self._seen)
