"""Operator side of resuming: graceful stops (exit 79) do not use up backoffLimit, queued pods do not time out,
status reports the latest checkpoint and every resume, with Events for resumes and skipped checkpoints."""

from __future__ import annotations

import dataclasses
import json

import pytest
from operator_jobs import ascend_job, job
from test_policy import NOW, ended, parse, workers
from test_reconcile import T0, FakeKube, Harness

from zoo_operator import conditions as c
from zoo_operator import logparse, memory, podview, policy, status
from zoo_operator.policy import JobState

JOB = parse(ascend_job(replicas=2, runPolicy={"backoffLimit": 1}))


def test_graceful_stop_restarts_without_using_the_backoff_limit() -> None:
    pods = workers(2, attempt=1)
    pods[0] = ended(pods[0], c.EXIT_STOPPED)
    # one restart already used, backoffLimit 1: a crash now would fail the job, a graceful stop restarts it
    d = policy.decide(JOB, JobState(c.RUNNING, restarts=1), pods, NOW)
    assert d.phase == c.RESTARTING and d.reason == c.REASON_STOPPED and d.restart and d.stopped
    assert "not counted" in d.message and "exit code 79" in d.message
    new = status.compute(
        prev={},
        state=JobState(c.RUNNING, restarts=1),
        decision=d,
        pods=pods,
        replicas=2,
        generation=1,
        now=NOW,
        rank_table=None,
        progress={},
        lines={},
        result=None,
        created=True,
    )
    assert new["restarts"] == 2 and new["stoppedRestarts"] == 1
    # after that stopped restart (restarts 2, of which 1 stopped), one counted restart is still left
    state = policy.state_from_status(new)
    assert state.stopped_restarts == 1
    crashed = workers(2, attempt=2)
    crashed[1] = ended(crashed[1], 1)
    again = policy.decide(JOB, dataclasses.replace(state, phase=c.RUNNING), crashed, NOW)
    assert again.phase == c.FAILED and again.reason == c.REASON_BACKOFF_LIMIT  # 2 - 1 = 1 counted = the limit
    fresh = policy.decide(
        parse(ascend_job(replicas=2, runPolicy={"backoffLimit": 2})),
        dataclasses.replace(state, phase=c.RUNNING),
        crashed,
        NOW,
    )
    assert fresh.phase == c.RESTARTING and "restart 2 of 2" in fresh.message and not fresh.stopped


def _pending(**spec: object) -> dict:
    return {
        "metadata": {
            "name": "asc-worker-0",
            "creationTimestamp": podview.format_time(NOW - 4000),
            "labels": {c.LABEL_RANK: "0"},
        },
        "spec": spec,
        "status": {"phase": "Pending"},
    }


def test_gated_and_gang_waiting_pods_are_queued() -> None:
    gated = podview.view(_pending(schedulingGates=[{"name": "kueue.x-k8s.io/admission"}]))
    assert gated.queued and gated.node is None
    volcano = _pending()
    volcano["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "2/2 tasks in gang unschedulable: pod group is not ready, 2 Pending, 2 minAvailable",
        }
    ]
    assert podview.view(volcano).queued
    plain = _pending()
    plain["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient huawei.com/Ascend910.",
        }
    ]
    assert not podview.view(plain).queued


def test_scheduling_timeout_skips_queued_pods() -> None:
    waiting = [podview.PodView(name=f"asc-worker-{i}", index=i, created=NOW - 4000) for i in range(2)]
    timed_out = policy.decide(JOB, JobState(c.PENDING), waiting, NOW)
    assert timed_out.phase == c.FAILED and timed_out.reason == c.REASON_SCHEDULING_TIMEOUT
    queued = [dataclasses.replace(p, queued=True) for p in waiting]
    d = policy.decide(JOB, JobState(c.PENDING), queued, NOW)
    assert d.phase == c.PENDING and d.reason == c.REASON_PODS_PENDING


def _events(*records: dict) -> list[dict]:
    return [{"ts": 100.0, "rank": 0, **r} for r in records]


def test_fold_checkpoints_and_status() -> None:
    folded = logparse.fold_checkpoints(
        {},
        _events(
            {
                "event": "resume",
                "epoch": 2,
                "step": 22,
                "global_step": 44,
                "path": "/c/m-2.ckpt",
                "ts": 1000.0,
            },
            {"event": "checkpoint_invalid", "path": "/c/m-3.ckpt", "reason": "sha256 does not match"},
            {"event": "checkpoint", "epoch": 3, "step": 22, "path": "/c/m-3.ckpt", "time": 1100.0},
            {
                "event": "checkpoint",
                "epoch": 3,
                "step": 22,
                "path": "/c/m-best.ckpt",
                "time": 1101.0,
                "best": True,
            },
        ),
    )
    assert folded["last"] == {"epoch": 3, "step": 22, "path": "/c/m-3.ckpt", "ts": 1100.0}
    assert folded["invalid"] == [["/c/m-3.ckpt", "sha256 does not match"]]
    # progress before the restart: epoch 3 step 5 of 22 -> 49 steps done, resumed at 44: 5 lost
    prev = {"progress": {"epoch": 3, "step": 5, "stepsPerEpoch": 22}, "restarts": 1}
    out = status.with_checkpoints({"restarts": 1}, prev, folded)
    assert out["lastCheckpoint"] == {
        "epoch": 3,
        "step": 22,
        "path": "/c/m-3.ckpt",
        "time": podview.format_time(1100.0),
    }
    assert out["resumes"] == [
        {
            "restart": 1,
            "epoch": 2,
            "step": 22,
            "path": "/c/m-2.ckpt",
            "lostSteps": 5,
            "time": podview.format_time(1000.0),
        }
    ]
    again = status.with_checkpoints({"restarts": 1, "resumes": out["resumes"]}, out, folded)
    assert len(again["resumes"]) == 1  # the same resume event read again is not a new resume
    notices = status.checkpoint_notices({}, out, {"w0": folded["invalid"]})
    assert [(n[1], n[2]) for n in notices] == [
        ("Normal", c.REASON_TRAINING_RESUMED),
        ("Warning", c.REASON_CHECKPOINT_INVALID),
    ]
    assert "5 steps trained again" in notices[0][3] and "sha256" in notices[1][3]
    assert [n[0] for n in status.checkpoint_notices(out, out, {})] == []  # already in status: not announced


def test_an_in_place_process_restart_is_counted_and_marked_on_its_resume() -> None:
    restart = {"event": "process_restart", "code": 137, "restart": 1, "limit": 3, "ts": 1200.0}
    resume = {
        "event": "resume",
        "epoch": 2,
        "step": 4,
        "global_step": 12,
        "path": "/c/m-2_4.ckpt",
        "ts": 1230.0,
    }
    folded = logparse.fold_checkpoints({}, _events(restart, resume))
    prev = {"progress": {"epoch": 2, "step": 5, "stepsPerEpoch": 8}, "restarts": 0}
    out = status.with_checkpoints({"restarts": 0}, prev, folded)
    assert out["resumes"] == [
        {
            "restart": 0,
            "epoch": 2,
            "step": 4,
            "path": "/c/m-2_4.ckpt",
            "time": podview.format_time(1230.0),
            "lostSteps": 1,
            "inPlace": True,
        }
    ]
    assert out["processRestarts"] == 1
    # the next pass starts from a status without the count (status.compute): it comes from prev, and the same
    # resume read again counts once
    again = status.with_checkpoints({"restarts": 0, "resumes": out["resumes"]}, out, folded)
    assert again["processRestarts"] == 1
    (notice,) = status.checkpoint_notices({}, out, {})
    assert notice[2] == c.REASON_TRAINING_RESUMED and "no pod recreated" in notice[3]
    # a resume in a new pod (a whole-gang restart: no process_restart in its log) is not in place
    fresh = status.with_checkpoints({"restarts": 1}, prev, logparse.fold_checkpoints({}, _events(resume)))
    assert "inPlace" not in fresh["resumes"][0] and "processRestarts" not in fresh


def test_reconcile_reports_checkpoints_resumes_and_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    h = Harness(fake, job(runPolicy={"backoffLimit": 0}))
    h.run(T0)
    for name in ("demo-sched", "demo-worker-0", "demo-worker-1"):
        h.set_running(name)
    line = json.dumps
    lines = [
        line(
            {
                "event": "checkpoint_invalid",
                "ts": T0 + 1,
                "rank": 0,
                "path": "/zoo/checkpoint/x/m-2.ckpt",
                "reason": "no manifest (the write did not finish)",
            }
        ),
        line(
            {
                "event": "resume",
                "ts": T0 + 1,
                "rank": 0,
                "epoch": 1,
                "step": 4,
                "global_step": 4,
                "path": "/zoo/checkpoint/x/m-1.ckpt",
                "time": T0 - 50,
            }
        ),
        line({"event": "start", "ts": T0 + 2, "rank": 0, "epochs": 3, "steps_per_epoch": 4}),
        line(
            {
                "event": "checkpoint",
                "ts": T0 + 3,
                "rank": 0,
                "epoch": 2,
                "step": 4,
                "global_step": 8,
                "path": "/zoo/checkpoint/x/m-2.ckpt",
                "time": T0 + 3,
            }
        ),
    ]
    # What the runner's follower does with rank 0's streamed log lines.
    memory.feed_lines(h.mem, "demo-worker-0", "uid-demo-worker-0", lines, 5)
    h.run(T0 + 10)
    st = h.body["status"]
    assert st["lastCheckpoint"]["epoch"] == 2 and st["lastCheckpoint"]["path"].endswith("m-2.ckpt")
    assert [(r["epoch"], r["step"], r["restart"]) for r in st["resumes"]] == [(1, 4, 0)]
    kinds = [(e[0], e[1]) for e in h.events]
    assert ("Warning", c.REASON_CHECKPOINT_INVALID) in kinds and (
        "Normal",
        c.REASON_TRAINING_RESUMED,
    ) in kinds
    h.run(T0 + 20)  # read again: nothing announced twice
    assert [(e[0], e[1]) for e in h.events].count(("Warning", c.REASON_CHECKPOINT_INVALID)) == 1
    assert [(e[0], e[1]) for e in h.events].count(("Normal", c.REASON_TRAINING_RESUMED)) == 1
    # a graceful stop (exit 79) with backoffLimit 0: restarted anyway
    h.set_exit("demo-worker-1", c.EXIT_STOPPED)
    h.run(T0 + 30)
    st = h.body["status"]
    assert st["phase"] == c.RESTARTING and st["reason"] == c.REASON_STOPPED and st["stoppedRestarts"] == 1
