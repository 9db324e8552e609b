"""Dynamic batching: items for one verifier from many concurrent calls share one forward pass.

Each verifier gets a queue and ``workers`` threads. A worker takes the oldest queued item, waits at most
``max_wait_s`` (counted from that item's arrival) for more to arrive, then scores up to ``max_batch`` items
in one ``verifier(items)`` call. While a forward pass runs, new items pile up, so under load batches fill
without any waiting; at low load an item waits at most ``max_wait_s``.

Every item carries the instant after which nobody wants its score any more (its call's deadline less a
reply margin). An item still queued at that instant is not scored: its future fails with
:class:`QueueExpired`. A call that gives up cancels its futures, so items of a cancelled call are skipped
too. When a batch raises, each item is retried alone so one poisoned item fails only itself, never the
items other clients put in the same batch.

``cross_request=False`` is the client-batched shape of reward servers such as OpenRLHF's ``serve_rm``: a
forward pass holds the items of one call only (up to ``max_batch``) and never waits for other calls. It is
kept so the benchmark can measure what cross-call batching adds on the same server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from safework.core.errors import ConfigError
from safework.core.types import VerifierScore
from safework.verifiers.base import Verifier, VerifierItem
from safework.verifiers.failure import verifier_raised

log = logging.getLogger("safework.verifiers.server")


class QueueExpired(Exception):
    """The item's deadline passed while it waited in the queue; it was not scored."""


class VerifierFailed(Exception):
    """The verifier raised or returned something that is not a score for this item."""


class BatcherClosed(Exception):
    """The server is shutting down; the item was not scored (retry on another replica)."""


@dataclass
class _Pending:
    item: VerifierItem
    expires: float | None  # time.monotonic() after which the score is useless
    future: Future[VerifierScore]
    call: int = 0  # which submit() the item came with (batches stay within one call without cross_request)
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """Counters for tests, logs and the benchmark."""

    batches: int = 0
    items_scored: int = 0
    items_expired: int = 0
    largest_batch: int = 0


class DynamicBatcher:
    """Queue plus worker threads for one verifier (see the module docstring)."""

    def __init__(
        self,
        name: str,
        verifier: Verifier,
        *,
        max_batch: int = 32,
        max_wait_s: float = 0.005,
        workers: int = 1,
        cross_request: bool = True,
    ) -> None:
        if max_batch < 1:
            raise ConfigError(f"max_batch must be at least 1 (1 turns batching off), got {max_batch}.")
        if max_wait_s < 0:
            raise ConfigError(f"max_wait must be zero or more milliseconds, got {max_wait_s * 1000:g}.")
        if workers < 1:
            raise ConfigError(f"each verifier needs at least one worker thread, got {workers}.")
        self.name, self.verifier = name, verifier
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.cross_request = cross_request
        self._calls = 0
        self.stats = BatchStats()
        self._queue: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"verifier-{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, items: Sequence[VerifierItem], expires: float | None) -> list[Future[VerifierScore]]:
        """Queue ``items``; each future resolves to its score or fails with one of this module's errors."""
        with self._cond:
            self._calls += 1
            pending = [_Pending(item, expires, Future(), self._calls) for item in items]
            if self._closed:
                for entry in pending:
                    entry.future.set_exception(BatcherClosed(f"the {self.name} verifier is shutting down"))
                return [entry.future for entry in pending]
            self._queue.extend(pending)
            self._cond.notify_all()
        return [entry.future for entry in pending]

    def close(self, timeout: float = 5.0) -> None:
        """Refuse new items, fail the queued ones with :class:`BatcherClosed`, let running batches end."""
        with self._cond:
            self._closed = True
            left, self._queue = list(self._queue), deque()
            self._cond.notify_all()
        for entry in left:
            if entry.future.set_running_or_notify_cancel():
                entry.future.set_exception(BatcherClosed(f"the {self.name} verifier is shutting down"))
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(end - time.monotonic(), 0.0))

    # -- worker side ------------------------------------------------------------------------------------
    def _take_batch(self) -> list[_Pending] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            if not self.cross_request:  # one call's items, at once: submit() queued them together
                call, batch = self._queue[0].call, list[_Pending]()
                while self._queue and self._queue[0].call == call and len(batch) < self.max_batch:
                    batch.append(self._queue.popleft())
                return batch
            fill_until = self._queue[0].arrived + self.max_wait_s
            while len(self._queue) < self.max_batch and not self._closed:
                left = fill_until - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            count = min(len(self._queue), self.max_batch)
            return [self._queue.popleft() for _ in range(count)]

    def _work(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            now = time.monotonic()
            live = []
            for entry in batch:
                if not entry.future.set_running_or_notify_cancel():
                    continue  # the caller gave up
                if entry.expires is not None and now >= entry.expires:
                    self.stats.items_expired += 1
                    entry.future.set_exception(
                        QueueExpired(
                            f"not scored: the call's deadline passed while the item waited in the "
                            f"{self.name} queue; retry with a longer timeout or a less loaded server"
                        )
                    )
                    continue
                live.append(entry)
            if live:
                self._run(live)

    def _run(self, batch: list[_Pending]) -> None:
        try:
            scores = self.verifier([entry.item for entry in batch])
            bad = [s for s in scores if not isinstance(s, VerifierScore)]
            if bad:
                raise TypeError(f"score() returned a {type(bad[0]).__name__}, not a VerifierScore")
        except Exception as exc:  # a plugin's bug must not kill the worker thread
            if len(batch) > 1:
                log.warning(
                    "verifier %s failed on a batch of %d (%s); retrying items alone",
                    self.name,
                    len(batch),
                    exc,
                )
                for entry in batch:
                    if entry.expires is not None and time.monotonic() >= entry.expires:
                        entry.future.set_exception(
                            QueueExpired(f"not scored: the deadline passed while retrying {self.name}")
                        )
                    else:
                        self._run([entry])
                return
            batch[0].future.set_exception(VerifierFailed(verifier_raised(self.name, exc)))
            return
        self.stats.batches += 1
        self.stats.items_scored += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for entry, score in zip(batch, scores, strict=True):
            entry.future.set_result(score)
