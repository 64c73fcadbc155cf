"""The reconcile loop: every TICK_SECONDS, one pass over every known job (no kopf here).

kopf feeds it job bodies (`observe`, `forget`) and a pod lookup; it keeps one `JobMemory` per job uid and runs
passes of different jobs concurrently, so one slow job does not hold up the others. A job that raises is logged
and retried on the next tick; it never stops the loop. Unlike kopf timers, this needs no finalizer on the jobs,
so a job can be deleted even while the operator is not running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from zoo_operator import kube, limits, metrics, reconcile
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings

log = logging.getLogger(__name__)
TICK_SECONDS = 2.0
# Passes of different jobs running at once (each may read logs and write objects).
CONCURRENT_JOBS = 8

PodLookup = Callable[[str, str], Iterable[PodView]]


class Runner:
    """Known jobs and their memories; `run_forever` drives the passes."""

    def __init__(self, settings: Settings, pods: PodLookup) -> None:
        self.settings = settings
        self.pods = pods
        self.bodies: dict[str, Mapping[str, Any]] = {}
        self.memories: dict[str, reconcile.JobMemory] = {}
        # Event posts run in the background; asyncio keeps only weak references to tasks, so hold them here.
        self._posting: set[asyncio.Task[None]] = set()
        self.log_memo = limits.LogMemo()

    def observe(self, body: Mapping[str, Any]) -> None:
        """Record the latest version of a job (from a watch event)."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            return
        if meta.get("deletionTimestamp"):
            self.forget(uid)
        else:
            self.bodies[uid] = body

    def forget(self, uid: str) -> None:
        """Drop a deleted job and its memory."""
        body = self.bodies.pop(uid, None)
        self.memories.pop(uid, None)
        if body is not None:  # console: a deleted job's per-job metric series go with it (issue 12)
            metrics.forget_job(str(body["metadata"].get("namespace")), str(body["metadata"].get("name")))

    async def pass_one(self, uid: str, now: float) -> None:
        """One reconcile pass of one job; errors are logged, not raised."""
        body = self.bodies.get(uid)
        if body is None:
            return
        meta = body["metadata"]
        mem = self.memories.setdefault(uid, reconcile.JobMemory())
        pods = [p for p in self.pods(str(meta.get("namespace")), str(meta.get("name"))) if p.owner_uid == uid]

        def emit(kind: str, reason: str, message: str) -> None:
            task = asyncio.get_running_loop().create_task(kube.post_event(body, kind, reason, message))
            self._posting.add(task)
            task.add_done_callback(self._posting.discard)

        try:
            await reconcile.reconcile(body, pods, self.settings, mem, now, emit)
            self.log_memo.clear(uid)
        except Exception as err:  # one broken job must not stop the others
            # Issue 11: a failure that repeats every tick is logged once per change (bounded), not every 2 s.
            text = f"{type(err).__name__}: {limits.cut(str(err), 2000)}"
            if self.log_memo.should_log(uid, text):
                log.error("%s/%s: reconcile pass failed; retrying every tick (logged again when the error changes): "
                          "%s", meta.get("namespace"), meta.get("name"), text, exc_info=len(str(err)) <= 2000)

    async def pass_all(self) -> None:
        """One pass over every known job."""
        gate = asyncio.Semaphore(CONCURRENT_JOBS)
        now = time.time()

        async def one(uid: str) -> None:
            async with gate:
                await self.pass_one(uid, now)

        await asyncio.gather(*(one(uid) for uid in list(self.bodies)))

    async def run_forever(self, tick: float = TICK_SECONDS) -> None:
        """Pass over all jobs every `tick` seconds until cancelled."""
        while True:
            started = time.monotonic()
            await self.pass_all()
            await asyncio.sleep(max(0.1, tick - (time.monotonic() - started)))
