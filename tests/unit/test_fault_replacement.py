"""Issue 23: a hardware fault under a dynamic launch moves only the affected ranks (policy.replace_faulty_ranks),
on plain data: the decision, then two planner passes (delete the faulty pod alone, recreate it off the node)."""

from __future__ import annotations

import dataclasses
from typing import Any

from operator_jobs import ascend_job, job
from test_hardware_faults import DOC_DEVICE_INFO, LOST, NOW, RESOURCE, annotation
from test_server_mode import dynamic_server_job

from zoo_operator import conditions as c
from zoo_operator import faults, planner, policy, render, spec
from zoo_operator.memory import JobMemory, Observation
from zoo_operator.podview import PodView
from zoo_operator.policy import JobState
from zoo_operator.settings import Settings

RUNNING_STATUS = {"phase": c.RUNNING, "restarts": 0, "startTime": "1970-01-01T02:40:00Z"}


def _body(run_policy: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body = job(replicas=3, runPolicy={"backoffLimit": 0, **(run_policy or {})}, **extra)
    body["status"] = dict(RUNNING_STATUS)
    return body


def _gang(parsed: spec.JobSpec, nodes: dict[int | None, str], npus: bool = False) -> list[PodView]:
    """The running pods of a dynamic gang (None: the scheduler pod) on the given nodes."""
    return [
        PodView(
            name=render.pod_name(parsed, idx),
            uid=f"uid-{idx}",
            owner_uid="uid-1",
            role=c.ROLE_SCHEDULER if idx is None else c.ROLE_WORKER,
            index=idx,
            created=NOW - 100,
            node=node,
            phase="Running",
            running=True,
            device_annotation=annotation(idx) if npus and idx is not None else None,
        )
        for idx, node in nodes.items()
    ]


def _lost(pods: list[PodView], node: str) -> list[PodView]:
    others = {p.node for p in pods if p.node and p.node != node}
    return faults.fold(pods, {node: faults.node_ready(LOST), **{n: (True, "") for n in others}}, {})


def test_a_worker_on_a_lost_node_is_deleted_alone_without_grace_and_not_counted() -> None:
    parsed = spec.parse(_body(), Settings())
    pods = _lost(_gang(parsed, {None: "a", 0: "a", 1: "b", 2: "a"}), "b")
    d = policy.decide(parsed, JobState(c.RUNNING), pods, NOW)
    worker1 = render.worker_name(parsed, 1)
    assert (d.phase, d.reason) == (c.RUNNING, c.REASON_NODE_NOT_READY), d.message
    assert d.delete == (worker1,) and d.force == (worker1,)
    assert not d.restart and d.create == ()  # the same attempt: the next pass recreates it (replace_lost_pod)
    assert [(f.pod, f.node) for f in d.faults] == [(worker1, "b")]
    assert "recreating only pod" in d.message and "not counted" in d.message


def test_two_workers_on_one_lost_node_both_go_and_only_they() -> None:
    parsed = spec.parse(_body(), Settings())
    pods = _lost(_gang(parsed, {None: "a", 0: "b", 1: "a", 2: "b"}), "b")
    d = policy.decide(parsed, JobState(c.RUNNING), pods, NOW)
    names = tuple(render.worker_name(parsed, i) for i in (0, 2))
    assert d.phase == c.RUNNING and d.delete == names and d.force == names


def test_an_unhealthy_npu_of_a_dynamic_ascend_job_replaces_its_rank_gracefully() -> None:
    parsed = spec.parse(_body(device={"type": "Ascend910"}, launch="dynamic"), Settings())
    assert parsed.launch == "dynamic"
    pods = _gang(parsed, {None: "n1", 0: "n1", 1: "n1", 2: "n1"}, npus=True)
    # Worker 0 holds NPU 0, which the device plugin reports unhealthy; the node itself is fine.
    pods = faults.fold(pods, {"n1": (True, "")}, {"n1": faults.unhealthy_npus(DOC_DEVICE_INFO, RESOURCE)})
    d = policy.decide(parsed, JobState(c.RUNNING), pods, NOW)
    assert (d.phase, d.reason) == (c.RUNNING, c.REASON_NPU_UNHEALTHY), d.message
    assert d.delete == (render.worker_name(parsed, 0),) and d.force == ()


def test_the_whole_gang_moves_where_one_rank_cannot() -> None:
    cases = {
        "the scheduler pod is on the lost node": (_body(), {None: "b", 0: "a", 1: "a", 2: "a"}),
        "in-place restarts are off": (_body({"processRestarts": 0}), {None: "a", 0: "a", 1: "b", 2: "a"}),
    }
    for why, (body, nodes) in cases.items():
        parsed = spec.parse(body, Settings())
        pods = _lost(_gang(parsed, nodes), "b")
        d = policy.decide(parsed, JobState(c.RUNNING), pods, NOW)
        assert d.phase == c.RESTARTING and d.restart and d.stopped, why
        assert len(d.delete) == 4, why
    # A rank-table gang: hccl.json would change under the survivors (policy.replace_faulty_ranks).
    table = spec.parse(
        ascend_job(replicas=2, runPolicy={"backoffLimit": 0, "processRestarts": 3}), Settings()
    )
    pods = [
        PodView(
            name=render.worker_name(table, i),
            role=c.ROLE_WORKER,
            index=i,
            created=NOW - 100,
            node="n1" if i == 0 else "n2",
            phase="Running",
            running=True,
        )
        for i in range(2)
    ]
    d = policy.decide(table, JobState(c.RUNNING), _lost(pods, "n1"), NOW)
    assert d.phase == c.RESTARTING and set(d.delete) == {p.name for p in pods}
    # Not running yet (e.g. the gang is still restarting): nothing to keep, so the whole gang.
    parsed = spec.parse(_body(), Settings())
    pods = _lost(_gang(parsed, {None: "a", 0: "a", 1: "b", 2: "a"}), "b")
    assert policy.replace_faulty_ranks(parsed, JobState(c.RESTARTING), faults.detect(pods, 0), pods) is None


def test_planner_deletes_the_rank_warns_then_recreates_it_off_the_lost_node() -> None:
    body = _body()
    parsed = spec.parse(body, Settings())
    pods = _lost(_gang(parsed, {None: "a", 0: "a", 1: "b", 2: "a"}), "b")
    mem = JobMemory(uid="uid-1", ensured_uid="uid-1")
    out = planner.plan(Observation(body=body, pods=tuple(pods), now=NOW), mem, Settings())
    worker1 = render.worker_name(parsed, 1)
    assert out.delete == (worker1,) and out.force == (worker1,) and out.create == []
    assert out.status is not None and out.status["phase"] == c.RUNNING
    assert out.status["restarts"] == 0 and not out.status.get("stoppedRestarts")
    [fault] = out.status["faults"]
    assert (fault["reason"], fault["node"], fault["pod"], fault["restart"]) == (
        c.REASON_NODE_NOT_READY,
        "b",
        worker1,
        0,
    )
    assert ("Warning", c.REASON_NODE_NOT_READY) in {(k, r) for k, r, _ in out.events}
    # The next pass: the force-deleted pod is gone; only it is recreated, same attempt, kept off node b.
    mem.last_written = out.status
    rest = tuple(p for p in pods if p.name != worker1)
    again = planner.plan(
        Observation(body={**body, "status": out.status}, pods=rest, now=NOW + 1), mem, Settings()
    )
    assert [p["metadata"]["name"] for p in again.create] == [worker1] and again.delete == ()
    created = again.create[0]
    assert created["metadata"]["annotations"][c.ANNOTATION_ATTEMPT] == "0"
    terms = created["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    rule = {"key": faults.HOSTNAME_LABEL, "operator": "NotIn", "values": ["b"]}
    assert all(rule in t["matchExpressions"] for t in terms["nodeSelectorTerms"])
    assert again.status is None or again.status["faults"] == out.status["faults"]


def test_a_fault_after_a_rank_finished_moves_the_whole_gang_not_one_rank() -> None:
    # benchmarks/recovery.py found it: the faulty NPU kept working, rank 0 finished, the scheduler left, and a
    # lone replacement of rank 1 waited for them for ever (the job stayed Running).
    parsed = spec.parse(_body(device={"type": "Ascend910"}, launch="dynamic"), Settings())
    pods = _gang(parsed, {None: "n1", 0: "n1", 1: "n1", 2: "n1"}, npus=True)
    done = dataclasses.replace(pods[2], running=False, phase="Succeeded", exit_code=0)  # worker 1
    pods = [pods[0], pods[1], done, pods[3]]
    pods = faults.fold(pods, {"n1": (True, "")}, {"n1": faults.unhealthy_npus(DOC_DEVICE_INFO, RESOURCE)})
    assert policy.gang_finishing(pods)
    d = policy.decide(parsed, JobState(c.RUNNING), pods, NOW)
    assert (d.phase, d.reason) == (c.RESTARTING, c.REASON_NPU_UNHEALTHY), d.message
    assert "recreating only pod" not in d.message
    assert d.restart and set(d.delete) == {p.name for p in pods}  # a new attempt of every rank


def test_a_lost_pod_after_the_scheduler_left_is_not_recreated_alone() -> None:
    parsed = spec.parse(_body(), Settings())
    pods = _gang(parsed, {None: "a", 0: "a", 1: "a", 2: "a"})
    sched = dataclasses.replace(pods[0], running=False, phase="Succeeded", exit_code=0)
    without_1 = [sched, pods[1], pods[3]]  # worker 1's pod is gone
    d = policy.decide(parsed, JobState(c.RUNNING), without_1, NOW)
    assert d.reason != c.REASON_POD_REPLACED, d.message
    running = [p for p in _gang(parsed, {None: "a", 0: "a", 1: "a", 2: "a"}) if p.index != 1]
    alone = policy.decide(parsed, JobState(c.RUNNING), running, NOW)
    assert alone.reason == c.REASON_POD_REPLACED  # the same loss while the gang runs: recreated alone


def test_a_server_pod_on_a_lost_node_moves_the_whole_gang() -> None:
    # Like a lost server pod (replace_lost_pod): zoo-server-launch restarts no process in place, so deleting the
    # one server pod alone would leave its peers waiting; the whole gang moves at once, not counted.
    body = dynamic_server_job(replicas=4, per_node=2, runPolicy={"processRestarts": 3, "backoffLimit": 0})
    body["status"] = dict(RUNNING_STATUS)
    parsed = spec.parse(body, Settings())
    pods = _lost(_gang(parsed, {None: "a", 0: "a", 1: "b"}), "b")
    d = policy.decide(parsed, JobState(c.RUNNING), pods, NOW)
    assert (d.phase, d.reason) == (c.RESTARTING, c.REASON_NODE_NOT_READY), d.message
    assert d.restart and set(d.delete) == {p.name for p in pods}
    assert "recreating only pod" not in d.message
