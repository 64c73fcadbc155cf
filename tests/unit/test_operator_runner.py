"""The reconcile loop: which jobs it knows, and that one failing job does not stop the others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from operator_jobs import job

from zoo_operator import kube, reconcile, runner
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings


def body(name: str, uid: str, **meta: Any) -> dict[str, Any]:
    b = job(name)
    b["metadata"].update(uid=uid, **meta)
    return b


def test_observe_and_forget() -> None:
    r = runner.Runner(Settings(), lambda ns, name: [])
    r.observe(body("a", "u1"))
    r.observe(body("b", "u2"))
    r.observe({"metadata": {"name": "no-uid"}})
    assert sorted(r.bodies) == ["u1", "u2"]
    r.memories["u1"] = reconcile.JobMemory()
    r.observe(body("a", "u1", deletionTimestamp="2026-01-01T00:00:00Z"))
    assert sorted(r.bodies) == ["u2"] and "u1" not in r.memories
    r.forget("u2")
    assert r.bodies == {}


def test_a_failing_job_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []
    events: list[tuple[str, str]] = []

    async def fake_reconcile(b: dict, pods: list[PodView], settings: Settings, mem: reconcile.JobMemory,
                             now: float, emit: Any) -> None:
        name = b["metadata"]["name"]
        seen.append((name, len(pods)))
        emit("Normal", "Seen", name)
        if name == "broken":
            raise RuntimeError("boom")

    async def post_event(b: dict, kind: str, reason: str, message: str) -> None:
        events.append((reason, message))

    monkeypatch.setattr(reconcile, "reconcile", fake_reconcile)
    monkeypatch.setattr(kube, "post_event", post_event)
    mine = PodView(name="ok-worker-0", owner_uid="u2")
    foreign = PodView(name="ok-worker-1", owner_uid="someone-else")
    r = runner.Runner(Settings(), lambda ns, name: [mine, foreign] if name == "ok" else [])
    r.observe(body("broken", "u1"))
    r.observe(body("ok", "u2"))

    async def two_passes() -> None:
        await r.pass_all()
        await r.pass_all()
        await asyncio.sleep(0)  # let the posted events run

    asyncio.run(two_passes())
    assert sorted(seen) == [("broken", 0), ("broken", 0), ("ok", 1), ("ok", 1)]  # only pods the job owns
    assert sorted(set(events)) == [("Seen", "broken"), ("Seen", "ok")]
    assert set(r.memories) == {"u1", "u2"}
