"""The in-memory replay guard and the per-client token buckets: correct, bounded, and safe across threads."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from safework.core.errors import ConfigError
from safework.watermark.security.rate_limit import TokenBucketLimiter
from safework.watermark.security.replay import MemoryReplayGuard, ReplayGuard


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _in_threads(worker: Callable[[], bool], threads: int = 8, calls: int = 50) -> int:
    """How many of threads x calls invocations returned True, all started together."""
    start = threading.Barrier(threads)
    counts = [0] * threads

    def run(index: int) -> None:
        start.wait()
        counts[index] = sum(worker() for _ in range(calls))

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(counts)


# --- replay guard ----------------------------------------------------------------------------------------


def test_replay_guard_accepts_each_nonce_once_per_client() -> None:
    guard = MemoryReplayGuard(30, clock=Clock())
    assert isinstance(guard, ReplayGuard)
    assert guard.remember("vendor-a", b"n1", 1000.0)
    assert not guard.remember("vendor-a", b"n1", 1000.0)
    assert not guard.remember("vendor-a", b"n1", 1005.0)  # same nonce, other time: still a replay
    assert guard.remember("vendor-b", b"n1", 1000.0)  # nonces are per client
    assert guard.remember("vendor-a", b"n2", 1000.0)
    assert len(guard) == 3


def test_replay_guard_forgets_after_the_window_and_refuses_older_requests() -> None:
    clock = Clock()
    guard = MemoryReplayGuard(30, clock=clock)
    for i in range(100):
        assert guard.remember("vendor-a", i.to_bytes(16, "big"), 1000.0 + i * 0.1)
    clock.now = 1000.0 + 30 + 5  # first ~50 entries are now older than the window
    assert guard.remember("vendor-a", b"late", clock.now)
    assert len(guard) == 51
    assert not guard.remember("vendor-a", b"old", 1000.0)  # too old to tell whether it is a replay
    clock.now += 1000
    assert guard.remember("vendor-a", b"x", clock.now)
    assert len(guard) == 1


def test_replay_guard_full_fails_closed() -> None:
    clock = Clock()
    guard = MemoryReplayGuard(30, max_entries=3, clock=clock)
    assert all(guard.remember("c", bytes([i]), 1000.0) for i in range(3))
    assert not guard.remember("c", b"new", 1000.0)
    clock.now += 31
    assert guard.remember("c", b"new", clock.now)


def test_replay_guard_is_thread_safe() -> None:
    guard = MemoryReplayGuard(30, clock=Clock())
    assert _in_threads(lambda: guard.remember("c", b"same", 1000.0)) == 1


@pytest.mark.parametrize("kwargs", [{"window_s": 0}, {"window_s": 10, "max_entries": 0}])
def test_replay_guard_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        MemoryReplayGuard(**kwargs)  # type: ignore[arg-type]


# --- token buckets ---------------------------------------------------------------------------------------


def test_burst_then_steady_rate() -> None:
    limiter = TokenBucketLimiter(rate_per_s=2.0, burst=5, clock=Clock(0.0))
    assert [limiter.allow("a", now=0.0) for _ in range(6)] == [True] * 5 + [False]
    assert limiter.retry_after("a", now=0.0) == pytest.approx(0.5)
    assert limiter.retry_after("a", cost=3, now=0.0) == pytest.approx(1.5)
    assert limiter.allow("b", now=0.0)  # buckets are per client
    assert not limiter.allow("a", now=0.4)
    assert limiter.allow("a", now=0.5)
    assert not limiter.allow("a", now=0.5)
    assert limiter.retry_after("unknown", now=0.0) == 0.0
    assert limiter.allow("a", cost=5, now=100.0)  # refilled, but never beyond the burst
    assert not limiter.allow("a", now=100.0)


def test_refusal_takes_nothing() -> None:
    limiter = TokenBucketLimiter(rate_per_s=1.0, burst=3)
    assert limiter.allow("a", cost=2, now=0.0)
    assert not limiter.allow("a", cost=2, now=0.0)
    assert limiter.allow("a", cost=1, now=0.0)


def test_idle_buckets_are_evicted_and_memory_is_capped() -> None:
    limiter = TokenBucketLimiter(rate_per_s=1.0, burst=2, max_clients=50)
    for i in range(40):
        limiter.allow(f"client-{i}", now=0.0)
    assert len(limiter) == 40
    limiter.allow("late", now=2.0)  # burst / rate = 2 s: everyone else is full again, so forgotten
    assert len(limiter) == 1
    for i in range(200):
        limiter.allow(f"flood-{i}", now=3.0)
    assert len(limiter) == 50


def test_limiter_is_thread_safe() -> None:
    limiter = TokenBucketLimiter(rate_per_s=1.0, burst=37)
    assert _in_threads(lambda: limiter.allow("c", now=0.0)) == 37


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_per_s": 0, "burst": 1}, "rate_per_s must be a positive number"),
        ({"rate_per_s": float("inf"), "burst": 1}, "rate_per_s must be a positive number"),
        ({"rate_per_s": 1, "burst": 0.5}, "burst must be at least 1"),
        ({"rate_per_s": 1, "burst": 1, "max_clients": 0}, "max_clients must be at least 1"),
    ],
)
def test_limiter_settings_are_checked(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TokenBucketLimiter(**kwargs)  # type: ignore[arg-type]


def test_impossible_cost_is_an_error_not_a_silent_refusal() -> None:
    limiter = TokenBucketLimiter(rate_per_s=1.0, burst=2)
    with pytest.raises(ConfigError, match=r"at most the burst \(2\)"):
        limiter.allow("a", cost=3)
    with pytest.raises(ConfigError, match="must be positive"):
        limiter.retry_after("a", cost=0)
