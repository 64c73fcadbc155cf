"""One pod per server on the local twin (issue 21): a 16-device job, perNode 8, spec.device.podsPer server, on two
fake Ascend nodes, under both device-plugin generations.

Two pods, each requesting the 8 NPUs of its node; the twin's device plugin (hack/cluster/zoocluster/devices.py)
gives each ASCEND_VISIBLE_DEVICES with its 8 physical ids and writes one annotation listing all 8 (server_id the
node IP up to v7, the pod UID from v26). The operator builds the rank table from those annotations (one server
per node, 8 devices each); zoo-server-launch in each pod waits for it and starts 8 zoo-train processes, each with
its logical DEVICE_ID (0..7, the index of its NPU among the pod's visible ones) and the table's RANK_ID; the
workload's simulated Ascend checks (ascend_check.py) refuse any DEVICE_ID or RANK_ID HCCL would refuse, then
train the tiny model on CPU. The same job in device mode (16 pods) is test_ascend.py's
test_16_ranks_per_node_8_train_on_two_fake_ascend_nodes: this file changes only spec.device.podsPer.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from e2e_helpers import E2E, pod_processes, wait_for
from test_ascend import ANNOTATION, TableWatch, ascend_job, node_ips
from test_console import ztj

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize("generation", ["v7", "v26"])
def test_16_devices_per_node_8_run_as_two_server_pods(e2e: E2E, generation: str) -> None:
    job = f"srv16-{generation}"
    body = ascend_job(e2e, job, generation)
    body["spec"]["device"]["podsPer"] = "server"
    watch = TableWatch(e2e, job)
    try:
        e2e.apply(body)
        # 16 CPU-trained processes on a slow shared machine: generous, like the device-mode test.
        status = e2e.wait_phase(job, {"Succeeded", "Failed"}, timeout=900)
    finally:
        seen = watch.stop()
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    assert status.get("result"), status
    assert status["ranks"]["total"] == 16 and status["ranks"]["succeeded"] == 16, status["ranks"]
    assert seen[0] == "initializing" and seen[-1] == "completed", seen

    pods = {p["metadata"]["name"]: p for p in e2e.pods(job)}
    assert sorted(pods) == [f"{job}-worker-0", f"{job}-worker-1"], sorted(pods)
    expected_nodes = {"v7": {"ascend-node-1", "ascend-node-2"}, "v26": {"ascend-node-3", "ascend-node-4"}}
    assert {p["spec"]["nodeName"] for p in pods.values()} == expected_nodes[generation]

    table = json.loads(e2e.get("configmap", f"{job}-ranktable")["data"]["hccl.json"])
    ips = node_ips(e2e)
    assert table["status"] == "completed" and table["server_count"] == "2"
    assert sorted(s["server_id"] for s in table["server_list"]) == sorted(
        ips[p["spec"]["nodeName"]] for p in pods.values()
    )
    rank_of = {
        (s["server_id"], d["device_id"]): int(d["rank_id"]) for s in table["server_list"] for d in s["device"]
    }
    assert sorted(rank_of.values()) == list(range(16))

    started: dict[int, tuple[str, int, int]] = {}
    for name, pod in pods.items():
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert limits["huawei.com/Ascend910"] == "8", limits
        plugin = json.loads(pod["metadata"]["annotations"][ANNOTATION])
        node_ip = ips[pod["spec"]["nodeName"]]
        if generation == "v26":
            assert plugin["server_id"] == pod["metadata"]["uid"] and plugin["host_ip"] == node_ip
        else:
            assert plugin["server_id"] == node_ip
        physical = sorted(int(d["device_id"]) for d in plugin["devices"])
        assert len(physical) == 8, plugin
        log = e2e.logs(name)
        for line in re.findall(r"zoo-server-launch: rank (\d+): DEVICE_ID=(\d+) \(physical NPU (\d+)\)", log):
            rank, logical, phys = map(int, line)
            started[rank] = (name, logical, phys)
            # Its own logical device (the NPU's index in this pod) and the table's rank of that NPU.
            assert logical == physical.index(phys), (line, physical)
            assert rank_of[(node_ip, str(phys))] == rank, (line, rank_of)
            assert f"[rank {rank}] zoo-train: simulated Ascend NPU" in log, log[-3000:]
        ranks_here = sorted(r for r, (pod_name, _, _) in started.items() if pod_name == name)
        # One pod is one server: its ranks are contiguous, 8 of them, one process per NPU.
        assert len(ranks_here) == 8 and ranks_here == list(range(ranks_here[0], ranks_here[0] + 8)), (
            ranks_here
        )
        for rank in ranks_here:
            assert f"zoo-server-launch: rank {rank} exited with 0" in log, log[-3000:]
    assert sorted(started) == list(range(16)), started

    # `kubectl ztj logs --rank N` shows that rank's lines only, out of the server pod that holds it.
    out = ztj(e2e, "logs", job, "--rank", "11", "--color", "never")
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("[rank 11]") for ln in lines), out.stdout[-2000:]
    assert any("simulated Ascend NPU" in ln for ln in lines), out.stdout[-2000:]


def kill_process_of_rank(namespace: str, pod: str, rank: int) -> int:
    """SIGKILL the zoo-train process of global rank `rank` inside a server pod (as an OOM kill would): the child
    of zoo-server-launch whose environment says RANK_ID=<rank>; returns its PID."""
    pids = pod_processes(namespace, pod)
    for pid in pids:
        try:
            env = set((Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0"))
            parent = (Path("/proc") / str(parent_of(pid)) / "cmdline").read_bytes()
        except OSError:
            continue
        if f"RANK_ID={rank}".encode() in env and b"zoo-server-launch" in parent:
            os.kill(pid, signal.SIGKILL)
            return pid
    pytest.fail(
        f"no process of rank {rank} under zoo-server-launch in {namespace}/{pod} ({pids})", pytrace=False
    )


def parent_of(pid: int) -> int:
    stat = (Path("/proc") / str(pid) / "stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_a_killed_process_fails_its_server_pod_and_the_whole_gang_restarts(e2e: E2E) -> None:
    """4 ranks, perNode 2, two server pods; rank 3's process is SIGKILLed mid-training: its launcher stops rank 2,
    the pod fails with 137 (the killed process's status, retryable), the operator restarts the whole gang (both
    pods, attempt 1), which resumes and succeeds."""
    job = "srvkill"
    body = ascend_job(e2e, job, "v7", replicas=4, backoffLimit=1)
    body["spec"]["device"] = {"type": "Ascend910", "perNode": 2, "podsPer": "server"}
    # The twin sinks as Ascend does (issue 21): 24 images on 4 ranks at batch 1 are 6 steps per epoch, 3 per sink,
    # so the host hears of every 3rd step (a size that does not divide 6 is refused, exit 64, as on Ascend). Three
    # epochs: the restart resumes in epoch 1 or 2, and at least one whole epoch then runs sinked.
    body["spec"]["hyperparameters"].update(epochs=3, steps_per_epoch=40, batch_size=1, sink_size=3)
    e2e.apply(body)
    wait_for("two server pods", lambda: len(e2e.pods(job)) == 2, timeout=120)

    def stepping() -> str | None:
        for pod in (f"{job}-worker-0", f"{job}-worker-1"):
            out = e2e.kubectl("logs", pod, "--tail=200", check=False)
            if out.returncode == 0 and re.search(
                r'"event": "step".*"rank": 3|"rank": 3.*"event": "step"', out.stdout
            ):
                return pod
        return None

    deadline = time.monotonic() + 600  # tiny PyNative steps, but 4 processes start MindSpore on 2 slow cores
    while (holder := stepping()) is None:
        if time.monotonic() > deadline:
            pods = {p["metadata"]["name"]: (p.get("status") or {}).get("phase") for p in e2e.pods(job)}
            pytest.fail(
                f"rank 3 never stepped in 600 s: pods {pods}, status {e2e.status(job)}", pytrace=False
            )
        time.sleep(2)
    before = {p["metadata"]["uid"] for p in e2e.pods(job)}
    kill_process_of_rank(e2e.namespace, holder, 3)
    status = e2e.wait_phase(job, {"Succeeded", "Failed"}, timeout=900)
    assert status["phase"] == "Succeeded" and status["restarts"] == 1, json.dumps(status, indent=1)[-4000:]
    restart = [e for e in e2e.events(job) if e["reason"] == "GangRestart"]
    assert restart and f"{holder} failed with exit code 137" in restart[0]["message"], restart
    pods = e2e.pods(job)
    assert len(pods) == 2 and not before & {p["metadata"]["uid"] for p in pods}, "the whole gang was replaced"
    assert {p["metadata"]["annotations"]["modelzoo.io/attempt"] for p in pods} == {"1"}
    assert status["ranks"]["succeeded"] == 4, status["ranks"]
    # Sink mode ran end to end: after the log's "data sink" line (a resumed epoch's rest runs step by step
    # first, as on Ascend), every rank's step events fall on sink boundaries.
    sinked = {}
    for pod in pods:
        lines = e2e.kubectl("logs", pod["metadata"]["name"]).stdout.splitlines()
        for rank in range(4):
            mark = f"[rank {rank}] data sink: 3 steps per sink (6 per epoch) (simulated NPU"
            at = next((i for i, ln in enumerate(lines) if ln.startswith(mark)), None)
            if at is None:
                continue
            events = [json.loads(ln) for ln in lines[at:] if ln.startswith('{"event": "step"')]
            sinked[rank] = [ev["step"] for ev in events if ev["rank"] == rank]
    assert sorted(sinked) == [0, 1, 2, 3], sinked
    assert all(steps and all(step % 3 == 0 for step in steps) for steps in sinked.values()), sinked
