"""A keyed work queue: watch events add a job's key; workers process each key, one pass at a time per key.

Modelled on client-go's workqueue (k8s.io/client-go/util/workqueue: a `dirty` set deduplicates keys while they
wait, a key being processed is never handed out again until `done`, and one added meanwhile is queued again
after it; delayed adds wait in a heap). `KeyQueue` is the plain bookkeeping, driven by an explicit clock so it
is unit-tested without asyncio; `run` is the asyncio driver with bounded concurrency.

A pass (the worker) returns when its key next needs attention: seconds from now, or None when nothing is due
(a finished job with nothing pending leaves the queue until the next watch event). A pass that raises is
retried with exponential backoff per key (1 s, 2 s, 4 s ... 60 s), reset by the next pass that succeeds.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import time
from collections.abc import Awaitable, Callable

from zoo_operator import limits

log = logging.getLogger(__name__)
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0

Worker = Callable[[str], Awaitable[float | None]]


def retry_delay(failures: int) -> float:
    """Seconds before the next try of a key that failed `failures` times in a row (1-based)."""
    return min(RETRY_BASE_SECONDS * 2 ** max(failures - 1, 0), RETRY_MAX_SECONDS)


class KeyQueue:
    """Ready keys in FIFO order, each at most once; keys in process; keys waiting for a time."""

    def __init__(self) -> None:
        self._ready: collections.deque[str] = collections.deque()
        self._dirty: set[str] = set()  # keys that must be (re)processed: in _ready, or waiting for done()
        self._processing: set[str] = set()
        self._due: dict[str, float] = {}  # key -> earliest time it was asked for
        self._heap: list[tuple[float, str]] = []
        self.failures: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ready)

    def add(self, key: str) -> None:
        """Process `key` as soon as possible (once, however often it is added before it is taken)."""
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._ready.append(key)

    def add_at(self, key: str, when: float, now: float) -> None:
        """Process `key` at `when` (an earlier request for the same key wins)."""
        if when <= now:
            self.add(key)
            return
        if self._due.get(key, float("inf")) <= when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, key))

    def promote(self, now: float) -> None:
        """Move every key whose time has come to the ready queue."""
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            if self._due.get(key) == when:  # else superseded by an earlier request
                del self._due[key]
                self.add(key)

    def next_wakeup(self) -> float | None:
        """The earliest time a waiting key becomes ready, or None."""
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # stale entry
        return self._heap[0][0] if self._heap else None

    def take(self) -> str | None:
        """The next ready key (now marked as in process), or None."""
        if not self._ready:
            return None
        key = self._ready.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        """`key`'s pass ended; if it was added meanwhile, it is ready again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._ready.append(key)

    def processing(self) -> frozenset[str]:
        """Keys whose pass is running now."""
        return frozenset(self._processing)

    def waiting(self) -> dict[str, float]:
        """Keys waiting for a time, with that time."""
        return dict(self._due)


class WorkQueue:
    """The asyncio driver: `concurrency` workers take keys from a `KeyQueue` and run `worker` on them."""

    def __init__(
        self, worker: Worker, concurrency: int = 16, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.worker = worker
        self.concurrency = concurrency
        self.clock = clock
        self.keys = KeyQueue()
        self.log_memo = limits.LogMemo()
        self._wake = asyncio.Event()
        self._active = 0

    def add(self, key: str) -> None:
        """Enqueue `key` now (called from watch handlers)."""
        self.keys.add(key)
        self._wake.set()

    def add_after(self, key: str, delay: float) -> None:
        """Enqueue `key` in `delay` seconds."""
        self.keys.add_at(key, self.clock() + delay, self.clock())
        self._wake.set()

    async def _one(self, key: str) -> None:
        try:
            delay = await self.worker(key)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # one broken job must not stop the others
            failures = self.keys.failures[key] = self.keys.failures.get(key, 0) + 1
            delay = retry_delay(failures)
            # Issue 11: a problem that repeats is logged once per change (bounded), not on every retry.
            text = f"{type(err).__name__}: {limits.cut(str(err), 2000)}"
            if self.log_memo.should_log(key, text):
                log.error(
                    "%s: pass failed (%d in a row); retrying with backoff, logged again when the error "
                    "changes: %s",
                    key,
                    failures,
                    text,
                    exc_info=len(str(err)) <= 2000,
                )
        else:
            self.keys.failures.pop(key, None)
            self.log_memo.clear(key)
        finally:
            self.keys.done(key)
            self._active -= 1  # before waking the loop (the task's done callback runs later)
            self._wake.set()
        if delay is not None:
            self.add_after(key, max(delay, 0.0))

    async def run(self) -> None:
        """Process keys until cancelled; cancelling also cancels the passes in flight."""
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._wake.clear()
                self.keys.promote(self.clock())
                while self._active < self.concurrency:
                    key = self.keys.take()
                    if key is None:
                        break
                    self._active += 1
                    task = asyncio.get_running_loop().create_task(self._one(key))
                    running.add(task)
                    task.add_done_callback(running.discard)
                wakeup = self.keys.next_wakeup()
                timeout = None if wakeup is None else max(wakeup - self.clock(), 0.0)
                if self._active >= self.concurrency:
                    timeout = None  # a finishing pass sets _wake
                try:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation.
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
