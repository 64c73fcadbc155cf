"""Issue 23: fault detection beyond exit codes, on plain data (faults.py, policy.fault_restart, the planner)."""

from __future__ import annotations

import dataclasses
import json

from operator_jobs import ascend_job, job

from zoo_operator import conditions as c
from zoo_operator import faults, planner, policy, spec
from zoo_operator.memory import JobMemory, Observation
from zoo_operator.podview import PodView
from zoo_operator.policy import JobState
from zoo_operator.settings import Settings

NOW = 10_000.0
RESOURCE = "huawei.com/Ascend910"
# The device-info ConfigMap's DeviceInfoCfg as MindCluster's documentation shows one (fault-handling guide,
# "ManuallySeparateNPU" example), with NPU 0 marked unhealthy and NPU 5's network down.
DOC_DEVICE_INFO = {
    "DeviceInfoCfg": json.dumps(
        {
            "DeviceInfo": {
                "DeviceList": {
                    "huawei.com/Ascend910": "Ascend910-1,Ascend910-2,Ascend910-3,Ascend910-4,Ascend910-6,Ascend910-7",
                    "huawei.com/Ascend910-Fault": "[]",
                    "huawei.com/Ascend910-NetworkUnhealthy": "Ascend910-5",
                    "huawei.com/Ascend910-Unhealthy": "Ascend910-0",
                },
                "UpdateTime": 1718702470,
            },
            "CheckCode": "4f00cf1d220da26a8fdbeb5ba163a751d4b264c48b81d22149257e272ae3b413",
        }
    ),
    "ManuallySeparateNPU": "",
}
READY = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}
LOST = {
    "status": {
        "conditions": [
            {
                "type": "Ready",
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
            }
        ]
    }
}


def annotation(*ids: int) -> str:
    return json.dumps(
        {"pod_name": "p", "server_id": "10.0.0.1", "devices": [{"device_id": str(i)} for i in ids]}
    )


def gang(n: int, attempt: int = 0, node: str = "n1") -> list[PodView]:
    return [
        PodView(
            name=f"asc-worker-{i}",
            index=i,
            attempt=attempt,
            created=NOW - 100,
            node=node,
            phase="Running",
            running=True,
            device_annotation=annotation(i),
        )
        for i in range(n)
    ]


JOB = spec.parse(ascend_job(replicas=2, runPolicy={"backoffLimit": 0}), Settings())


def test_device_info_names_the_unhealthy_and_network_unhealthy_npus() -> None:
    assert faults.unhealthy_npus(DOC_DEVICE_INFO, RESOURCE) == {
        0: c.REASON_NPU_UNHEALTHY,
        5: c.REASON_NPU_NETWORK_UNHEALTHY,
    }
    healthy = {
        "DeviceInfoCfg": DOC_DEVICE_INFO["DeviceInfoCfg"]
        .replace("Ascend910-0", "")
        .replace("Ascend910-5", "")
    }
    assert faults.unhealthy_npus(healthy, RESOURCE) == {}
    # Another chip's names, no ConfigMap, or a damaged one: no fault is made up.
    assert faults.unhealthy_npus(DOC_DEVICE_INFO, "huawei.com/Ascend310P") == {}
    assert faults.unhealthy_npus(None, RESOURCE) == {}
    assert faults.unhealthy_npus({"DeviceInfoCfg": "{not json"}, RESOURCE) == {}


def test_node_ready_reads_the_ready_condition() -> None:
    assert faults.node_ready(READY) == (True, "")
    ok, why = faults.node_ready(LOST)
    assert ok is False and "NodeStatusUnknown" in why and "stopped posting" in why
    assert faults.node_ready(None) == (False, "node is gone")
    assert faults.node_ready({"status": {}}) == (None, "")
    assert faults.node_ready({}) == (None, "")  # may not be read: unknown, never a fault


def test_a_rank_on_an_unhealthy_npu_restarts_the_gang_not_counted() -> None:
    pods = faults.fold(gang(2), {"n1": (True, "")}, {"n1": faults.unhealthy_npus(DOC_DEVICE_INFO, RESOURCE)})
    # Worker 0 holds NPU 0 (unhealthy); worker 1 holds NPU 1 (healthy).
    found = faults.detect(pods, 0)
    assert [(f.pod, f.device, f.reason) for f in found] == [("asc-worker-0", 0, c.REASON_NPU_UNHEALTHY)]
    d = policy.decide(JOB, JobState(c.RUNNING), pods, NOW)
    assert d.phase == c.RESTARTING and d.reason == c.REASON_NPU_UNHEALTHY
    assert d.restart and d.stopped  # backoffLimit 0, yet a restart: the hardware's fault is not counted
    assert set(d.delete) == {"asc-worker-0", "asc-worker-1"} and d.force == ()  # the node is fine: graceful
    assert "NPU 0 of node n1" in d.message and "not counted" in d.message


def test_a_rank_on_a_lost_node_restarts_with_force_delete_of_that_nodes_pods() -> None:
    pods = gang(1, node="n1") + [dataclasses.replace(gang(2, node="n2")[1])]
    pods = faults.fold(pods, {"n1": faults.node_ready(LOST), "n2": (True, "")}, {})
    d = policy.decide(JOB, JobState(c.RUNNING), pods, NOW)
    assert d.reason == c.REASON_NODE_NOT_READY and d.restart and d.stopped
    assert d.force == ("asc-worker-0",)  # only the pod whose kubelet cannot confirm its deletion
    assert [f.node for f in d.faults] == ["n1"]


def test_permanent_errors_still_fail_and_old_attempts_or_succeeded_ranks_are_no_fault() -> None:
    bad = {"n1": {0: c.REASON_NPU_UNHEALTHY, 1: c.REASON_NPU_UNHEALTHY}}
    pods = faults.fold(gang(2), {"n1": (True, "")}, bad)
    done = [dataclasses.replace(p, running=False, exit_code=0, phase="Succeeded") for p in pods]
    assert faults.detect(done, 0) == []
    assert faults.detect(pods, 1) == []  # pods of an attempt already given up
    permanent = [dataclasses.replace(pods[0], running=False, exit_code=64, phase="Failed"), pods[1]]
    assert policy.decide(JOB, JobState(c.RUNNING), permanent, NOW).phase == c.FAILED
    # A rank that crashed on a faulty NPU is the fault's, not the job's: not counted either.
    crashed = [dataclasses.replace(pods[0], running=False, exit_code=1, phase="Failed"), pods[1]]
    d = policy.decide(JOB, JobState(c.RUNNING), crashed, NOW)
    assert d.reason == c.REASON_NPU_UNHEALTHY and d.stopped


def test_without_any_fault_the_decision_is_unchanged() -> None:
    pods = faults.fold(gang(2), {"n1": (True, "")}, {"n1": {}})
    assert policy.decide(JOB, JobState(c.RUNNING), pods, NOW) == policy.decide(
        JOB, JobState(c.RUNNING), gang(2), NOW
    )


def test_avoid_nodes_adds_not_in_to_every_term() -> None:
    pod = {
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}]
                    }
                }
            }
        }
    }
    out = faults.avoid_nodes(pod, ["n1"])
    terms = out["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    rule = {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["n1"]}
    assert terms == [
        {"matchExpressions": [{"key": "a", "operator": "Exists"}, rule]},
        {"matchExpressions": [rule]},
    ]
    assert (
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ][1]
        == {}
    )  # the input is not changed
    bare = faults.avoid_nodes({"spec": {}}, ["n1", "n2"])
    assert bare["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ] == [{"matchExpressions": [{**rule, "values": ["n1", "n2"]}]}]
    assert faults.avoid_nodes(pod, []) is pod


def test_a_lost_node_is_recorded_once_and_the_record_is_bounded() -> None:
    lost = [faults.Fault(f"w{i}", "n1", c.REASON_NODE_NOT_READY, "gone") for i in range(8)]
    npu = [faults.Fault("w8", "n2", c.REASON_NPU_UNHEALTHY, "bad", 3)]
    [node, chip] = faults.record(None, lost + npu, 2, NOW)
    assert (node["pod"], node["node"], node["restart"]) == ("w0", "n1", 2) and chip["device"] == 3
    many = faults.record(
        None, [faults.Fault("w", f"n{i}", c.REASON_NODE_NOT_READY, "x" * 999) for i in range(30)], 0, NOW
    )
    assert len(many) == faults.MAX_FAULTS and many[-1]["node"] == "n29"
    assert len(many[0]["message"]) == faults.MESSAGE_CHARS


def test_only_node_faults_make_new_pods_avoid_a_node() -> None:
    recorded = [
        {"reason": c.REASON_NPU_UNHEALTHY, "node": "a"},
        {"reason": c.REASON_NODE_NOT_READY, "node": "b"},
    ]
    assert faults.avoided_nodes(recorded) == ("b",)
    assert faults.avoided_nodes(None) == ()


def _body(status: dict) -> dict:
    # In-place restarts off: the whole gang moves (with them a worker moves alone: test_fault_replacement.py).
    body = job(replicas=2, runPolicy={"backoffLimit": 0, "processRestarts": 0})
    body["metadata"]["uid"] = "uid-1"
    body["status"] = status
    return body


def test_planner_records_the_fault_force_deletes_and_keeps_the_new_gang_off_the_node() -> None:
    body = _body({"phase": c.RUNNING, "restarts": 0, "startTime": "1970-01-01T02:40:00Z"})
    parsed = spec.parse(body, Settings())
    names = ["sched"] + [f"w{i}" for i in range(2)]
    pods = [
        PodView(
            name=planner.render.pod_name(parsed, idx),
            role=c.ROLE_SCHEDULER if idx is None else c.ROLE_WORKER,
            index=idx,
            created=NOW - 100,
            node="cpu-1" if idx == 1 else "cpu-2",
            phase="Running",
            running=True,
        )
        for idx, _ in zip([None, 0, 1], names, strict=True)
    ]
    pods = faults.fold(pods, {"cpu-1": faults.node_ready(LOST), "cpu-2": (True, "")}, {})
    mem = JobMemory(uid="uid-1", ensured_uid="uid-1")
    out = planner.plan(Observation(body=body, pods=tuple(pods), now=NOW), mem, Settings())
    worker1 = planner.render.worker_name(parsed, 1)
    assert out.force == (worker1,) and len(out.delete) == 3
    assert out.status is not None and out.status["phase"] == c.RESTARTING
    assert out.status["restarts"] == 1 and out.status["stoppedRestarts"] == 1
    [fault] = out.status["faults"]
    assert fault["reason"] == c.REASON_NODE_NOT_READY and fault["node"] == "cpu-1" and fault["pod"] == worker1
    assert fault["restart"] == 0 and "device" not in fault
    assert ("Warning", c.REASON_NODE_NOT_READY) in {(k, r) for k, r, _ in out.events}
    # The next pass, after the backoff, with the old pods gone: the new gang keeps off cpu-1, faults are kept.
    later = {**out.status, "restartTime": "1970-01-01T00:00:00Z"}
    mem.last_written = later
    again = planner.plan(Observation(body=_body(later), pods=(), now=NOW + 60), mem, Settings())
    assert len(again.create) == 3
    for pod in again.create:
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert all(
            {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["cpu-1"]}
            in t["matchExpressions"]
            for t in terms["nodeSelectorTerms"]
        )
    assert again.status is None or again.status["faults"] == out.status["faults"]


def test_a_running_ascend_job_is_due_for_an_npu_check_and_a_cpu_job_is_not() -> None:
    for body, polled in ((ascend_job(replicas=2), True), (_body({}), False)):
        body["metadata"]["uid"] = "uid-1"
        body["status"] = {"phase": c.RUNNING, "restarts": 0}
        parsed = spec.parse(body, Settings())
        wanted = [None, 0, 1] if parsed.launch == "dynamic" else [0, 1]
        pods = [
            PodView(
                name=planner.render.pod_name(parsed, idx),
                role=c.ROLE_SCHEDULER if idx is None else c.ROLE_WORKER,
                index=idx,
                created=NOW - 100,
                node="n2",
                phase="Running",
                running=True,
            )
            for idx in wanted
        ]
        out = planner.plan(
            Observation(body=body, pods=tuple(pods), now=NOW), JobMemory(uid="uid-1"), Settings()
        )
        assert out.status is None or out.status["phase"] == c.RUNNING
        due = out.next_due is not None and out.next_due <= NOW + planner.FAULT_CHECK_SECONDS
        assert due == polled, (parsed.device_type, out.next_due)
