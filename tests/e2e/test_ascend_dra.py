"""NPUs through dynamic resource allocation on the local twin (issue 21): the chart with `ascend.dra.enabled`, a
job on the two DRA nodes (hack/cluster/nodes.yaml ascend-dra-1/2), allocated by the REAL kube-scheduler.

The twin's DRA nodes advertise no huawei.com/Ascend910; they publish what MindCluster's Ascend DRA driver publishes
(a ResourceSlice per node, driver npu.huawei.com, devices npu-0..7, DeviceClass npu.huawei.com:
hack/cluster/zoocluster/devices.py). The operator renders one ResourceClaimTemplate per job; the controller-manager's
resourceclaim controller makes one claim per pod; the kube-scheduler allocates devices from the slices; the twin
kubelet gives each container exactly what the driver's CDI spec gives: the allocated /dev/davinci<N> nodes and no
ASCEND_VISIBLE_DEVICES, and no device annotation (component/ascend-common/cdi/spec.go). So the rank-table launch,
which needs the annotation's device IPs, does not complete there, as on a real DRA node; the job runs the dynamic
launch. Small on purpose: 4 ranks, perNode 2.

A second operator release (DRA on) watches a namespace of its own; the session's operator (DRA off) is untouched.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import E2E, REPO
from test_ascend import ANNOTATION, PLUGIN_LABEL, ascend_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CHART = REPO / "charts" / "zoo-operator"
DRA_NODES = {"ascend-dra-1", "ascend-dra-2"}


@pytest.fixture(scope="module")
def dra(e2e: E2E) -> Iterator[E2E]:
    """The chart installed again with ascend.dra.enabled=true, watching a namespace of its own (the CRD is the
    session release's)."""
    tag = secrets.token_hex(3)
    env = E2E(e2e.cluster, f"e2e-dra-{tag}", f"zoo-dra-{tag}", f"zoo-dra-{tag}-system", e2e.data)
    e2e.cluster.kubectl("create", "namespace", env.namespace)
    e2e.cluster.helm(
        "install",
        env.release,
        str(CHART),
        "-n",
        env.release_namespace,
        "--create-namespace",
        "--set",
        f"fullnameOverride={env.release}",
        "--set",
        f"watchNamespaces={{{env.namespace}}}",
        "--set",
        "crds.enabled=false",
        "--set",
        "gang.enabled=true",
        "--set",
        "ascend.dra.enabled=true",
        # The tiny datasets reach the pods through hostPath volumes (as in the session release).
        "--set-json",
        'policy.volumeKinds=["emptyDir","configMap","persistentVolumeClaim","downwardAPI","ephemeral","hostPath"]',
        "--wait",
        "--timeout",
        "5m",
    )
    try:
        e2e.cluster.kubectl(
            "-n", env.release_namespace, "rollout", "status", f"deployment/{env.release}", "--timeout=180s"
        )
        yield env
    finally:
        out = e2e.cluster.kubectl(
            "logs", "-n", env.release_namespace, f"deployment/{env.release}", "--tail=40", check=False
        )
        print(f"--- DRA operator log (last 40 lines)\n{out.stdout}")
        e2e.cluster.kubectl("delete", "ztj", "--all", "-n", env.namespace, "--wait=false", check=False)
        e2e.cluster.helm("uninstall", env.release, "-n", env.release_namespace, check=False)
        for ns in (env.namespace, env.release_namespace):
            e2e.cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


class ClaimWatch:
    """Polls the namespace's ResourceClaims while the job runs (the resourceclaim controller deletes a pod's
    claim once the pod has finished): pod name -> the (pool, device) results the scheduler allocated."""

    def __init__(self, env: E2E) -> None:
        self.env = env
        self.allocated: dict[str, list[tuple[str, str]]] = {}
        self.classes: set[str] = set()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(2.0):
            out = self.env.kubectl("get", "resourceclaims", "-o", "json", check=False)
            if out.returncode != 0:
                continue
            for claim in json.loads(out.stdout)["items"]:
                status = claim.get("status") or {}
                results = ((status.get("allocation") or {}).get("devices") or {}).get("results") or []
                for owner in status.get("reservedFor") or []:
                    if results:
                        self.allocated[owner["name"]] = [(r["pool"], r["device"]) for r in results]
                for request in claim["spec"]["devices"]["requests"]:
                    self.classes.add(request["exactly"]["deviceClassName"])

    def stop(self) -> dict[str, list[tuple[str, str]]]:
        self._stop.set()
        self.thread.join(timeout=30)
        return self.allocated


def dra_job(env: E2E, name: str) -> dict[str, Any]:
    body = ascend_job(env, name, "dra", replicas=4)
    # The dynamic launch (msrun style): a rank table needs every NPU's device IP, which MindCluster's DRA driver
    # publishes nowhere (docs/contracts.md "NPUs through DRA"); HCCL finds them itself in this launch.
    body["spec"]["launch"] = "dynamic"
    body["spec"]["device"] = {"type": "Ascend910", "perNode": 2}
    # ascend_job selects the nodes labelled zoo.local/ascend-plugin: dra; they carry the NPU taint
    # huawei.com/Ascend910, which Ascend pods tolerate (render.NPU_TOLERATIONS).
    assert body["spec"]["podTemplate"]["nodeSelector"] == {PLUGIN_LABEL: "dra"}
    return body


def test_four_ranks_per_node_2_claim_their_npus_through_dra(dra: E2E) -> None:
    """Device mode, 4 pods, two per node, each claiming 1 NPU: the kube-scheduler must hand the two pods of a node
    different NPUs, and each container finds its NPU only as the /dev/davinci<N> node the driver's CDI spec gives
    (no ASCEND_VISIBLE_DEVICES, no device annotation), driving it as logical device 0."""
    job = "dra-device"
    claims = ClaimWatch(dra)
    try:
        dra.apply(dra_job(dra, job))
        # 4 tiny CPU-trained ranks on a slow shared machine, under a second operator: generous.
        status = dra.wait_phase(job, {"Succeeded", "Failed"}, timeout=900)
    finally:
        allocated = claims.stop()
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    assert status.get("result"), status
    assert status["ranks"]["total"] == 4 and status["ranks"]["succeeded"] == 4, status["ranks"]
    assert dra.get("configmap", f"{job}-ranktable") is None and "rankTable" not in status

    template = dra.get("resourceclaimtemplate", f"{job}-npu")
    assert template is not None, "the job's ResourceClaimTemplate is missing"
    (request,) = template["spec"]["spec"]["devices"]["requests"]
    assert request["exactly"] == {
        "deviceClassName": "npu.huawei.com",
        "allocationMode": "ExactCount",
        "count": 1,
    }, request
    assert template["metadata"]["ownerReferences"][0]["name"] == job
    assert claims.classes == {"npu.huawei.com"}, claims.classes

    pods = {p["metadata"]["name"]: p for p in dra.pods(job) if p["metadata"]["name"] != f"{job}-sched"}
    assert len(pods) == 4, sorted(pods)
    assert {p["spec"]["nodeName"] for p in pods.values()} == DRA_NODES
    held: dict[tuple[str, str], str] = {}
    for name, pod in pods.items():
        container = pod["spec"]["containers"][0]
        # The pod claims its NPUs from the template and requests no extended resource.
        assert pod["spec"]["resourceClaims"] == [{"name": "npu", "resourceClaimTemplateName": f"{job}-npu"}]
        assert container["resources"]["claims"] == [{"name": "npu"}]
        assert "huawei.com/Ascend910" not in container["resources"].get("limits", {}), container["resources"]
        # As MindCluster's DRA driver: nothing writes the device plugin's annotation.
        assert ANNOTATION not in (pod["metadata"].get("annotations") or {}), pod["metadata"]
        node = pod["spec"]["nodeName"]
        # The kube-scheduler allocated this pod one NPU of its own node, none another pod holds.
        results = allocated.get(name)
        assert results is not None and len(results) == 1, (name, allocated)
        ((pool, device),) = results
        assert pool == node, (name, pool, node)
        assert (pool, device) not in held, (
            f"{device} on {pool} allocated to {held.get((pool, device))} and {name}"
        )
        held[(pool, device)] = name
        log = dra.logs(name)
        # Found from the davinci node alone (the Ascend check fails a rank whose files and NPUs disagree).
        assert "zoo-launch: DEVICE_ID=0\n" in log and "RANK_TABLE_FILE" not in log, log[-2000:]
        assert "the Ascend checks passed" in log, log[-2000:]
    assert len(held) == 4, held


def test_server_mode_on_dra_runs_the_dynamic_launch_one_process_per_claimed_npu(dra: E2E) -> None:
    """podsPer server with the dynamic launch (msrun style), the way a MindCluster DRA cluster runs whole servers:
    a scheduler pod and 2 server pods, each claiming 2 NPUs of its node through DRA; each pod's zoo-server-launch
    starts 2 workers, local worker i on logical DEVICE_ID i (the i-th davinci node the driver gave the container)
    with RANK_ID = MS_NODE_ID = server x 2 + i. Every process passes the simulated Ascend checks and trains.
    Small on purpose (4 ranks); the issue's 16-device job is the same with replicas 16, perNode 8."""
    job = "dra-server"
    body = dra_job(dra, job)
    body["spec"]["device"]["podsPer"] = "server"
    claims = ClaimWatch(dra)
    try:
        dra.apply(body)
        status = dra.wait_phase(job, {"Succeeded", "Failed"}, timeout=900)
    finally:
        allocated = claims.stop()
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    assert status.get("result"), status
    assert status["ranks"]["total"] == 4 and status["ranks"]["succeeded"] == 4, status["ranks"]
    assert dra.get("configmap", f"{job}-ranktable") is None
    template = dra.get("resourceclaimtemplate", f"{job}-npu")
    assert (
        template is not None and template["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] == 2
    )

    pods = {p["metadata"]["name"]: p for p in dra.pods(job)}
    assert sorted(pods) == [f"{job}-sched", f"{job}-worker-0", f"{job}-worker-1"], sorted(pods)
    assert "resourceClaims" not in pods.pop(f"{job}-sched")["spec"]
    assert {p["spec"]["nodeName"] for p in pods.values()} == DRA_NODES
    started: dict[int, str] = {}
    for name, pod in sorted(pods.items()):
        server = int(name.rsplit("-", 1)[1])
        results = allocated.get(name)
        assert results is not None and len(results) == 2, (name, allocated)
        assert {pool for pool, _ in results} == {pod["spec"]["nodeName"]}, (name, results)
        # The driver's device names are npu-<physical id> (the number after the last '-').
        claimed = sorted(int(device.rsplit("-", 1)[1]) for _, device in results)
        log = dra.logs(name)
        lines = re.findall(r"zoo-server-launch: rank (\d+): DEVICE_ID=(\d+) \(physical NPU (\d+)\)", log)
        assert len(lines) == 2, log[-3000:]
        for rank_text, logical_text, physical_text in lines:
            rank, logical, physical = int(rank_text), int(logical_text), int(physical_text)
            started[rank] = name
            # Its own NPU of the claim, as the logical id msrun would give local worker `logical`.
            assert physical == claimed[logical], (name, lines, claimed)
            assert rank == server * 2 + logical, (name, lines)
            assert f"[rank {rank}] zoo-train: simulated Ascend NPU" in log, log[-3000:]
            assert f"zoo-server-launch: rank {rank} exited with 0" in log, log[-3000:]
            # MindSpore's dynamic cluster gave the process the rank its MS_NODE_ID asked for.
            events = [json.loads(ln) for ln in log.splitlines() if ln.startswith('{"event": "start"')]
            assert rank in {e["rank"] for e in events}, (rank, events)
    assert sorted(started) == [0, 1, 2, 3], started


def test_the_rank_table_launch_is_refused_on_dra_naming_why(dra: E2E) -> None:
    """A rank table needs every NPU's device IP, which nothing shows on a DRA node: the operator with
    ascend.dra.enabled refuses the launch at once (no pod, no claim) instead of letting pods wait for a table
    that never completes."""
    job = "dra-table"
    body = dra_job(dra, job)
    body["spec"]["launch"] = "ranktable"
    dra.apply(body)
    status = dra.wait_phase(job, {"Failed", "Running", "Succeeded"}, timeout=120)
    assert status["phase"] == "Failed" and status["reason"] == "InvalidSpec", status
    assert "spec.launch: ranktable is not available with NPUs through DRA" in status["message"], status
    assert dra.pods(job) == [] and dra.get("resourceclaimtemplate", f"{job}-npu") is None
