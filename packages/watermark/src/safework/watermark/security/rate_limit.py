"""Per-client token buckets: attribution queries are an oracle an attacker can probe to learn where the
watermark is, and seed requests cost the TTP a durable write, so each caller gets
``rate_per_s`` on average and at most ``burst`` at once.

A bucket that has been idle long enough to refill is indistinguishable from a new one, so it is dropped;
memory is bounded by the number of recently active clients, and hard-capped by ``max_clients``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from safework.core.errors import ConfigError


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """Thread-safe token buckets keyed by client id.

    ``now`` arguments are readings of ``clock`` (monotonic seconds by default), for tests and callers that
    already read the clock. When more than ``max_clients`` buckets are live, the least recently used one is
    dropped (that client starts again with a full bucket: lenient, but memory stays bounded).
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
            raise ConfigError(
                f"rate_per_s must be a positive number of requests per second, got {rate_per_s!r}."
            )
        if not (burst >= 1 and math.isfinite(burst)):
            raise ConfigError(f"burst must be at least 1 request, got {burst!r}.")
        if max_clients < 1:
            raise ConfigError(f"max_clients must be at least 1, got {max_clients!r}.")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._refill_s = self.burst / self.rate_per_s  # an idle bucket is full again after this long
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def _check_cost(self, cost: float) -> None:
        if not (cost > 0 and cost <= self.burst):
            raise ConfigError(
                f"cost {cost!r} must be positive and at most the burst ({self.burst:g}), or it could never "
                "be allowed; raise the burst or lower the cost."
            )

    def _evict(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if now - oldest.updated < self._refill_s and len(buckets) <= self.max_clients:
                break
            buckets.popitem(last=False)

    def _bucket(self, client_id: str, now: float) -> _Bucket:
        """The client's bucket refilled up to ``now`` (a fresh, full one if it has none)."""
        bucket = self._buckets.get(client_id)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[client_id] = bucket
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate_per_s)
            bucket.updated = max(bucket.updated, now)
            self._buckets.move_to_end(client_id)
        return bucket

    def allow(self, client_id: str, cost: float = 1.0, *, now: float | None = None) -> bool:
        """Take ``cost`` tokens from the client's bucket if it holds them; False (nothing taken) if not."""
        self._check_cost(cost)
        now = self._clock() if now is None else now
        with self._lock:
            bucket = self._bucket(client_id, now)
            allowed = bucket.tokens >= cost
            if allowed:
                bucket.tokens -= cost
            self._evict(now)
            return allowed

    def retry_after(self, client_id: str, cost: float = 1.0, *, now: float | None = None) -> float:
        """Seconds until ``allow(client_id, cost)`` would succeed (0.0 if it would now); for a
        RESOURCE_EXHAUSTED reply's retry hint. Takes nothing."""
        self._check_cost(cost)
        now = self._clock() if now is None else now
        with self._lock:
            bucket = self._buckets.get(client_id)
            if bucket is None:
                return 0.0
            tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.updated) * self.rate_per_s)
            return max(0.0, (cost - tokens) / self.rate_per_s)

    def __len__(self) -> int:
        """Live buckets (idle ones are dropped lazily, on the next ``allow``)."""
        with self._lock:
            return len(self._buckets)
