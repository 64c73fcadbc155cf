"""The control loop: which jobs it knows, what enqueues them, and that one failing job does not stop the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from operator_jobs import job

from zoo_operator import kube, memory, observe, planner, reconcile, runner
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings


def body(name: str, uid: str, **meta: Any) -> dict[str, Any]:
    b = job(name)
    b["metadata"].update(uid=uid, **meta)
    return b


def test_observe_touch_and_forget() -> None:
    async def scenario() -> None:
        r = runner.Runner(Settings(), lambda ns, name: [])
        r.observe(body("a", "u1"))
        r.observe(body("b", "u2"))
        r.observe({"metadata": {"name": "no-uid"}})
        assert sorted(r.bodies) == ["ns1/a", "ns1/b"] and len(r.queue.keys) == 2
        r.memories["ns1/a"] = memory.JobMemory()
        r.observe(body("a", "u1", deletionTimestamp="2026-01-01T00:00:00Z"))
        assert sorted(r.bodies) == ["ns1/b"] and "ns1/a" not in r.memories
        r.touch("ns1", "unknown")  # a pod of a job the runner does not know: nothing queued
        r.forget("ns1/b")
        assert r.bodies == {}

    asyncio.run(scenario())


def test_events_drive_passes_and_a_failing_job_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, int]] = []
    events: list[tuple[str, str]] = []

    async def fake_reconcile(
        b: dict,
        pods: list[PodView],
        settings: Settings,
        mem: memory.JobMemory,
        now: float,
        emit: Any,
        existing: Any = None,
    ) -> planner.Plan:
        name = b["metadata"]["name"]
        seen.append((name, len(pods)))
        emit("Normal", "Seen", name)
        if name == "broken":
            raise RuntimeError("boom")
        return planner.Plan(next_due=None if name == "done" else now + 0.05)

    async def post_event(b: dict, kind: str, reason: str, message: str) -> None:
        events.append((reason, message))

    monkeypatch.setattr(reconcile, "reconcile", fake_reconcile)
    monkeypatch.setattr(kube, "post_event", post_event)
    mine = PodView(name="ok-worker-0", owner_uid="u2")
    foreign = PodView(name="ok-worker-1", owner_uid="someone-else")
    r = runner.Runner(Settings(), lambda ns, name: [mine, foreign] if name == "ok" else [])

    async def scenario() -> None:
        loop = asyncio.get_running_loop().create_task(r.run_forever())
        r.observe(body("broken", "u1"))
        r.observe(body("ok", "u2"))
        r.observe(body("done", "u3"))
        await asyncio.sleep(0.02)
        assert sorted(seen) == [("broken", 0), ("done", 0), ("ok", 1)]  # only pods the job owns
        await asyncio.sleep(0.06)
        assert seen.count(("ok", 1)) == 2  # came back when its pass said so
        assert seen.count(("done", 0)) == 1 and seen.count(("broken", 0)) == 1  # nothing due / retry backoff
        r.touch("ns1", "done")  # a pod event
        await asyncio.sleep(0.02)
        assert seen.count(("done", 0)) == 2
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())
    assert sorted(set(events)) == [("Seen", "broken"), ("Seen", "done"), ("Seen", "ok")]
    assert set(r.memories) == {"ns1/broken", "ns1/ok", "ns1/done"}


def test_a_new_job_of_the_same_name_starts_with_a_fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    mems: list[memory.JobMemory] = []

    async def fake_reconcile(
        b: dict,
        pods: list[PodView],
        settings: Settings,
        mem: memory.JobMemory,
        now: float,
        emit: Any,
        existing: Any = None,
    ) -> planner.Plan:
        mem.last_written = {"phase": "Succeeded"}  # what the old job's passes left
        mems.append(mem)
        return planner.Plan()

    monkeypatch.setattr(reconcile, "reconcile", fake_reconcile)
    r = runner.Runner(Settings(), lambda ns, name: [])

    async def scenario() -> None:
        r.observe(body("a", "u1"))
        await r.pass_one("ns1/a")
        await r.pass_one("ns1/a")
        r.observe(body("a", "u2"))
        await r.pass_one("ns1/a")

    asyncio.run(scenario())
    assert mems[0] is mems[1] and mems[2] is not mems[0] and mems[2].uid == "u2"


def test_rank0_log_is_followed_and_progress_enqueues_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, int]] = []
    lines = asyncio.Queue[str | None]()

    async def follow_log(namespace: str, name: str, tail_lines: int, idle: float) -> AsyncIterator[str]:
        opened.append((name, tail_lines))
        while (line := await lines.get()) is not None:
            yield line

    async def fake_reconcile(
        b: dict,
        pods: list[PodView],
        settings: Settings,
        mem: memory.JobMemory,
        now: float,
        emit: Any,
        existing: Any = None,
    ) -> planner.Plan:
        return planner.Plan(follow="demo-worker-0")

    monkeypatch.setattr(kube, "follow_log", follow_log)
    monkeypatch.setattr(reconcile, "reconcile", fake_reconcile)
    pod = PodView(name="demo-worker-0", uid="p0", owner_uid="u1")
    r = runner.Runner(Settings(status_interval_seconds=0.05), lambda ns, name: [pod])

    async def scenario() -> None:
        loop = asyncio.get_running_loop().create_task(r.run_forever())
        r.observe(body("demo", "u1"))
        await asyncio.sleep(0.02)
        passes = r.passes
        assert opened == [("demo-worker-0", observe.LOG_POLL_LINES)] and passes == 1
        await lines.put('{"event": "step", "ts": 1, "rank": 0, "epoch": 1, "step": 3}')
        await asyncio.sleep(0.1)
        assert r.memories["ns1/demo"].logs["demo-worker-0"].progress["step"] == 3
        assert r.passes == passes + 1 and len(opened) == 1  # one pass for the progress, the stream kept
        await lines.put(None)  # the stream ends (the container did): a pass follows
        await asyncio.sleep(0.1)
        assert r.passes >= passes + 2
        # the passes still call rank 0 running: its ended log is not reopened at once (issue 25)
        assert len(opened) == 1 and not r.followers["ns1/demo"][2].done()
        r.forget("ns1/demo")
        assert r.followers == {}
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())


def test_progress_every_second_still_gets_a_pass_every_status_interval() -> None:
    """A rank logging a step every second must not push the next progress pass ever further away: the queue
    keeps one time per key (the earliest), so every request must be at most one interval ahead."""
    clock = [1000.0]
    asked: list[tuple[float, float]] = []  # (when asked, for when)

    async def scenario() -> None:
        r = runner.Runner(Settings(status_interval_seconds=5.0), lambda ns, name: [], clock=lambda: clock[0])
        r.queue.add_after = lambda key, delay: asked.append((clock[0], clock[0] + delay))  # type: ignore[method-assign]
        for _ in range(60):  # one minute of a step per second
            r._progressed("ns1/a")
            clock[0] += 1.0
        assert asked, "progress enqueues the job"
        assert all(due - at <= 5.0 + 1e-9 for at, due in asked), asked
        assert asked[-1][1] >= 1000.0 + 55.0, "passes keep coming for the whole minute"

    asyncio.run(scenario())


def test_watch_handlers_enqueue_on_the_event_loop() -> None:
    """Issue 25: the handlers that enqueue jobs are coroutines, so kopf runs them on the loop. A sync handler runs
    in kopf's thread pool, and the queue's asyncio.Event set from that thread does not wake the loop: in the scale
    benchmark the passes after the last annotations never ran and the tables stayed initializing."""
    import inspect

    from zoo_operator import conditions as c
    from zoo_operator import handlers

    assert inspect.iscoroutinefunction(handlers.object_event)
    assert inspect.iscoroutinefunction(handlers.job_event)

    async def scenario() -> None:
        r = runner.Runner(Settings(), lambda ns, name: [])
        passes: list[str] = []

        async def one(key: str) -> float | None:
            passes.append(key)
            return None

        r.queue.worker = one
        work = asyncio.get_running_loop().create_task(r.queue.run())
        memo = {"runner": r}

        async def until(count: int) -> None:
            async with asyncio.timeout(30):  # generous: the CI machine is slow
                while len(passes) < count:
                    await asyncio.sleep(0.01)

        await handlers.job_event(event={"type": "ADDED", "object": body("a", "u1")}, memo=memo)
        await until(1)
        await handlers.object_event(namespace="ns1", labels={c.LABEL_JOB: "a"}, memo=memo)
        await until(2)
        assert passes == ["ns1/a", "ns1/a"]
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)

    asyncio.run(scenario())
