"""Ascend on the local twin: 16 ranks, perNode 8, on two fake Ascend nodes, under both device-plugin generations,
gang-scheduled by the kube-scheduler's native gang scheduling, training to Succeeded.

The twin behaves like a MindCluster node where our pods depend on it (hack/cluster/zoocluster/devices.py): its
device plugin allocates a physical NPU, sets ASCEND_VISIBLE_DEVICES, shows the container only its davinci file
and writes the `ascend-910-configuration` annotation a few seconds after the container starts, as plugin <= v7
(server_id = node IP, nodes ascend-node-1/2) or >= v26 (server_id = pod UID, ascend-node-3/4). The operator
builds the rank table from those annotations (one server per node); zoo-launch in every pod waits for it and
exports RANK_ID and the logical DEVICE_ID; the workload, under the simulation switch only the twin sets, checks
everything HCCL would (device id within the visible devices, rank id of its physical NPU, rank size, table) and
then trains the tiny model on CPU. The gang test shows all-or-nothing placement: a job that cannot fit whole gets
no pod bound and fails after its scheduling timeout.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any

import pytest
from e2e_helpers import E2E, tiny_job, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ANNOTATION = "ascend.kubectl.kubernetes.io/ascend-910-configuration"
PLUGIN_LABEL = (
    "zoo.local/ascend-plugin"  # hack/cluster/nodes.yaml: v7 on ascend-node-1/2, v26 on ascend-node-3/4
)


class TableWatch:
    """`kubectl get configmap -w` of the job's ConfigMaps, recording every hccl.json status seen."""

    def __init__(self, e2e: E2E, job: str) -> None:
        self.statuses: list[str] = []
        self.proc = subprocess.Popen(
            [
                "kubectl",
                "-n",
                e2e.namespace,
                "get",
                "configmaps",
                "-l",
                f"modelzoo.io/job-name={job}",
                "-w",
                "-o",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=e2e.cluster.env,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        decoder, buf = json.JSONDecoder(), ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            buf += line
            try:
                obj, end = decoder.raw_decode(buf.lstrip())
            except ValueError:
                continue  # an object spans several lines
            buf = buf.lstrip()[end:]
            text = (obj.get("data") or {}).get("hccl.json")
            if text:
                status = json.loads(text).get("status")
                if not self.statuses or self.statuses[-1] != status:
                    self.statuses.append(status)

    def stop(self) -> list[str]:
        """Stop watching; the statuses in the order they were seen."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)
        return self.statuses


def ascend_job(e2e: E2E, name: str, generation: str, replicas: int = 16, **run: Any) -> dict[str, Any]:
    """The tiny model as an Ascend910 rank-table job, perNode 8, native gang, on the nodes of one plugin generation."""
    body = tiny_job(
        name,
        "resnet50_bam",
        e2e.data["images"],
        replicas=replicas,
        evaluate=None,
        batch_size=1,
        steps_per_epoch=1,
    )
    body["spec"].update(
        image="zoo-operator/workload-ascend:0.1.0",
        device={"type": "Ascend910", "perNode": 8},
        scheduling={"gang": True, "gangBackend": "kubernetes"},
        runPolicy={"backoffLimit": 0, "cleanPodPolicy": "None", **run},
        podTemplate={"nodeSelector": {PLUGIN_LABEL: generation}},
    )
    return body


def node_ips(e2e: E2E) -> dict[str, str]:
    nodes = json.loads(e2e.cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {
        n["metadata"]["name"]: next(
            a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"
        )
        for n in nodes
    }


@pytest.mark.parametrize("generation", ["v7", "v26"])
def test_16_ranks_per_node_8_train_on_two_fake_ascend_nodes(e2e: E2E, generation: str) -> None:
    job = f"asc16-{generation}"
    watch = TableWatch(e2e, job)
    try:
        e2e.apply(ascend_job(e2e, job, generation))
        status = e2e.wait_phase(job, {"Succeeded", "Failed"}, timeout=900)
    finally:
        seen = watch.stop()
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    assert status.get("result"), status
    assert seen[0] == "initializing" and seen[-1] == "completed", seen

    pods = {p["metadata"]["name"]: p for p in e2e.pods(job)}
    assert sorted(pods) == sorted(f"{job}-worker-{i}" for i in range(16))
    ips = node_ips(e2e)
    by_node: dict[str, list[int]] = {}
    for name, pod in pods.items():
        by_node.setdefault(pod["spec"]["nodeName"], []).append(int(name.rsplit("-", 1)[1]))
    # perNode 8: workers 0-7 share one node, 8-15 the other, on the nodes of the chosen plugin generation.
    assert sorted(sorted(v) for v in by_node.values()) == [list(range(8)), list(range(8, 16))], by_node
    expected_nodes = {"v7": {"ascend-node-1", "ascend-node-2"}, "v26": {"ascend-node-3", "ascend-node-4"}}
    assert set(by_node) == expected_nodes[generation]

    table = json.loads(e2e.get("configmap", f"{job}-ranktable")["data"]["hccl.json"])
    # The grouping rule: one server per node IP, whatever the annotation's server_id is.
    assert table["status"] == "completed" and table["server_count"] == "2"
    assert sorted(s["server_id"] for s in table["server_list"]) == sorted(ips[n] for n in by_node)
    rank_of = {
        (s["server_id"], d["device_id"]): d["rank_id"] for s in table["server_list"] for d in s["device"]
    }
    assert sorted(map(int, rank_of.values())) == list(range(16))
    for name, pod in pods.items():
        plugin = json.loads(pod["metadata"]["annotations"][ANNOTATION])
        node_ip = ips[pod["spec"]["nodeName"]]
        if generation == "v26":
            assert plugin["server_id"] == pod["metadata"]["uid"] and plugin["host_ip"] == node_ip
        else:
            assert plugin["server_id"] == node_ip
        (device,) = plugin["devices"]
        log = e2e.logs(name)
        # Every rank: logical device 0 for MindSpore, the table's rank of its physical NPU, checks passed.
        assert "zoo-launch: DEVICE_ID=0\n" in log, log[-2000:]
        assert f"zoo-launch: RANK_ID={rank_of[(node_ip, device['device_id'])]}\n" in log, log[-2000:]
        assert f"zoo-launch: ZOO_PHYSICAL_DEVICE_ID={device['device_id']}\n" in log
        assert "the Ascend checks passed" in log, log[-2000:]
    assert status["ranks"]["succeeded"] == 16


def test_a_gang_that_cannot_fit_whole_gets_no_pod_bound(e2e: E2E) -> None:
    """24 ranks on the two v7 nodes' 16 NPUs: the kube-scheduler's gang plugin binds none, and the job fails after
    its scheduling timeout instead of training on a partial gang."""
    job = "asc-gang"
    e2e.apply(ascend_job(e2e, job, "v7", replicas=24, schedulingTimeoutSeconds=45))
    group = wait_for("the native PodGroup", lambda: e2e.get("podgroups.scheduling.k8s.io", job), timeout=60)
    assert group["spec"]["schedulingPolicy"] == {"gang": {"minCount": 24}}
    wait_for("24 pods", lambda: len(e2e.pods(job)) == 24, timeout=60)
    bound: set[str] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the window in which a non-gang scheduler binds 16 of them
        bound |= {p["metadata"]["name"] for p in e2e.pods(job) if p["spec"].get("nodeName")}
        time.sleep(2)
    assert bound == set(), f"pods bound although the gang cannot fit: {sorted(bound)}"
    status = e2e.wait_phase(job, {"Failed", "Succeeded"}, timeout=120)
    assert status["phase"] == "Failed" and status["reason"] == "SchedulingTimeout", status
    assert not [p for p in e2e.pods(job) if p["spec"].get("nodeName")]


def test_dynamic_launch_on_ascend_trains_without_a_rank_table(e2e: E2E) -> None:
    """msrun-style launch on Ascend: a scheduler pod (no NPU) and two workers that each drive their NPU as
    logical device 0; no rank table is written or waited for."""
    job = "ascdyn"
    body = ascend_job(e2e, job, "v7", replicas=2)
    body["spec"].update(launch="dynamic", device={"type": "Ascend910", "perNode": 2})
    e2e.apply(body)
    status = e2e.wait_phase(job, {"Succeeded", "Failed"}, timeout=600)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    assert e2e.get("configmap", f"{job}-ranktable") is None and "rankTable" not in status
    pods = {p["metadata"]["name"]: p for p in e2e.pods(job)}
    assert set(pods) >= {f"{job}-worker-0", f"{job}-worker-1"}
    sched = pods.get(f"{job}-sched")  # cleanPodPolicy None keeps it
    assert sched is not None and "huawei.com/Ascend910" not in json.dumps(sched["spec"]["containers"])
    for i in range(2):
        pod = pods[f"{job}-worker-{i}"]
        assert pod["spec"]["containers"][0]["resources"]["limits"]["huawei.com/Ascend910"] == "1"
        log = e2e.logs(f"{job}-worker-{i}")
        assert "zoo-launch: DEVICE_ID=0\n" in log and "RANK_TABLE_FILE" not in log, log[-2000:]
        assert "the Ascend checks passed" in log, log[-2000:]
    # Both workers on one node (perNode 2), of the chosen plugin generation.
    assert {pods[f"{job}-worker-{i}"]["spec"]["nodeName"] for i in range(2)} <= {
        "ascend-node-1",
        "ascend-node-2",
    }
    assert len({pods[f"{job}-worker-{i}"]["spec"]["nodeName"] for i in range(2)}) == 1
