"""The control loop: a keyed work queue of jobs (no kopf here, no fixed tick).

kopf feeds it job bodies (`observe`, `forget`) and pod/object events (`touch`), each of which enqueues the
job's key ("namespace/name"); workers run one reconcile pass per key at a time, at most CONCURRENT_JOBS at
once, and each pass says when the job next needs attention (workqueue.py). A finished job with nothing due
leaves the queue. An operator restart rebuilds everything: kopf's initial listing enqueues every job.

The runner also follows rank 0's log of every running job as a stream (one request per job, not one per rank
per interval) and folds its lines into the job's memory; a change of progress enqueues the job, at most once
per status interval. A job that raises is logged and retried with backoff; it never stops the loop. Unlike kopf
timers, this needs no finalizer on the jobs, so a job can be deleted even while the operator is not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from zoo_operator import executor, kube, memory, metrics, observe, reconcile, workqueue
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings

log = logging.getLogger(__name__)
# Passes of different jobs running at once (each may read logs and write objects).
CONCURRENT_JOBS = 16
# A followed log stream that stays silent this long is reopened (a dead node must not hold it forever).
FOLLOW_IDLE_SECONDS = 300.0
FOLLOW_RETRY_SECONDS = 5.0

PodLookup = Callable[[str, str], Iterable[PodView]]
# (namespace, job name) -> (kind, name, controller UID) of the Services and ConfigMaps labelled as the job's.
ObjectLookup = Callable[[str, str], Collection[tuple[str, str, str]]]


def job_key(namespace: str, name: str) -> str:
    """The work-queue key of a job."""
    return f"{namespace}/{name}"


class Runner:
    """Known jobs, their memories and log followers; `run_forever` drives the work queue."""

    def __init__(
        self,
        settings: Settings,
        pods: PodLookup,
        objects: ObjectLookup | None = None,
        concurrency: int = CONCURRENT_JOBS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.pods = pods
        self.objects = objects
        self.clock = clock
        self.bodies: dict[str, Mapping[str, Any]] = {}
        self.memories: dict[str, memory.JobMemory] = {}
        self.queue = workqueue.WorkQueue(self.pass_one, concurrency)
        # key -> (pod name, pod uid, task) of the followed rank-0 log.
        self.followers: dict[str, tuple[str, str, asyncio.Task[None]]] = {}
        self.passes = 0
        # Event posts run in the background; asyncio keeps only weak references to tasks, so hold them here.
        self._posting: set[asyncio.Task[None]] = set()
        self._last_progress_enqueue: dict[str, float] = {}

    def observe(self, body: Mapping[str, Any]) -> None:
        """Record the latest version of a job (from a watch event) and enqueue it."""
        meta = body.get("metadata") or {}
        if not meta.get("uid") or not meta.get("name"):
            return
        key = job_key(str(meta.get("namespace")), str(meta["name"]))
        if meta.get("deletionTimestamp"):
            self.forget(key)
            return
        self.bodies[key] = body
        self.queue.add(key)

    def forget(self, key: str) -> None:
        """Drop a deleted job, its memory and its log follower."""
        body = self.bodies.pop(key, None)
        self.memories.pop(key, None)
        self._last_progress_enqueue.pop(key, None)
        self._stop_follower(key)
        if body is not None:  # console: a deleted job's per-job metric series go with it (issue 12)
            metrics.forget_job(str(body["metadata"].get("namespace")), str(body["metadata"].get("name")))

    def touch(self, namespace: str, job_name: str) -> None:
        """One of the job's pods (or objects) changed: enqueue the job if it is known."""
        key = job_key(namespace, job_name)
        if key in self.bodies:
            self.queue.add(key)

    def _emit(self, body: Mapping[str, Any]) -> executor.EventSink:
        def emit(kind: str, reason: str, message: str) -> None:
            task = asyncio.get_running_loop().create_task(kube.post_event(dict(body), kind, reason, message))
            self._posting.add(task)
            task.add_done_callback(self._posting.discard)

        return emit

    async def pass_one(self, key: str) -> float | None:
        """One reconcile pass of one job; returns seconds until it next needs one (None: nothing due)."""
        body = self.bodies.get(key)
        if body is None:
            self.memories.pop(key, None)
            self._stop_follower(key)
            return None
        meta = body["metadata"]
        uid = str(meta.get("uid"))
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        mem = self.memories.get(key)
        if mem is None or mem.uid != uid:
            mem = self.memories[key] = memory.JobMemory(uid=uid)  # a new job of the same name starts afresh
        pods = [p for p in self.pods(ns, name) if p.owner_uid == uid]
        # Issue 24: only objects the job controls count as its own; a labelled look-alike is read and refused.
        existing = (
            {(kind, n) for kind, n, owner in self.objects(ns, name) if owner == uid}
            if self.objects is not None
            else None
        )
        now = self.clock()
        self.passes += 1
        out = await reconcile.reconcile(body, pods, self.settings, mem, now, self._emit(body), existing)
        self._sync_follower(key, ns, out.follow, next((p.uid for p in pods if p.name == out.follow), ""))
        return None if out.next_due is None else max(out.next_due - self.clock(), 0.0)

    # -- rank 0's log, followed -------------------------------------------------------------------------------

    def _sync_follower(self, key: str, namespace: str, pod: str | None, uid: str) -> None:
        current = self.followers.get(key)
        if current is not None and (current[0], current[1]) == (pod, uid) and not current[2].done():
            return
        self._stop_follower(key)
        if pod is None:
            return
        task = asyncio.get_running_loop().create_task(self._follow(key, namespace, pod, uid))
        self.followers[key] = (pod, uid, task)

    def _stop_follower(self, key: str) -> None:
        current = self.followers.pop(key, None)
        if current is not None:
            current[2].cancel()

    def _progressed(self, key: str) -> None:
        """Progress changed: enqueue the job, at most once per status interval."""
        interval = self.settings.status_interval_seconds
        now = self.clock()
        last = self._last_progress_enqueue.get(key, 0.0)
        if last > now:
            return  # a pass is already planned; it reads all progress folded until then
        due = max(last + interval, now)
        self._last_progress_enqueue[key] = due
        self.queue.add_after(key, due - now)

    async def _follow(self, key: str, namespace: str, pod: str, uid: str) -> None:
        """Follow one pod's log until it ends or the follower is replaced; reopen after silence or errors.

        Each (re)open starts from the last LOG_POLL_LINES lines (the memory of the pod is reset for it), enough
        for the latest progress; no line is counted twice."""
        tail = self.settings.log_tail_lines
        while True:
            mem = self.memories.get(key)
            if mem is None:
                return
            mem.logs.pop(pod, None)
            try:
                async for line in kube.follow_log(
                    namespace, pod, observe.LOG_POLL_LINES, FOLLOW_IDLE_SECONDS
                ):
                    if memory.feed_lines(mem, pod, uid, (line,), tail):
                        self._progressed(key)
                # The stream ended: most likely the container did. The pass may still see the pod running (the
                # kubelet reports the exit after its log ends); reopening at once would read the ended log
                # again on every pass until then (issue 25: 3 reads at 256 ranks). So wait as after an error:
                # the pass that sees the exit stops this follower, a stream the apiserver closed is reopened.
                self.queue.add(key)
            except asyncio.CancelledError:
                raise
            except kube.ERRORS as err:
                log.debug("%s: following %s: %s; reopening", key, pod, err)
            except Exception:
                log.exception("%s: following %s failed; reopening", key, pod)
            await asyncio.sleep(FOLLOW_RETRY_SECONDS)

    async def lead(self) -> None:
        """Run as the acting replica (leader.py): forget what an earlier term left, enqueue every known job."""
        self.memories.clear()
        self._last_progress_enqueue.clear()
        for key in list(self.bodies):
            self.queue.add(key)
        await self.run_forever()

    async def run_forever(self) -> None:
        """Run the work queue until cancelled (the followers stop with it)."""
        try:
            await self.queue.run()
        finally:
            for key in list(self.followers):
                self._stop_follower(key)
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._posting, return_exceptions=True)
