"""The Ascend rank-table path: 4 ranks on the local cluster's two Ascend nodes, through the chart-installed operator.

The kubelet plays the Ascend device plugin (the `ascend-910-configuration` annotation on each bound pod); the
operator fills the rank table ConfigMap from those annotations, "initializing" until every device is known, then
"completed"; zoo-launch in every pod waits for the completed table, exports RANK_ID and DEVICE_ID and execs the
training command.

This machine has no Ascend devices and the workload never falls back silently to another device, so real
training would fail at `--device Ascend`. The job therefore uses what the spec offers to change a pod without
touching the operator's command: `spec.podTemplate` mounts tests/e2e/rankcheck (hostPath) and puts it first on
PATH, so the `zoo-train` that zoo-launch execs is rankcheck/zoo-train, which checks the environment and the
table it sees at its mount path against each other and exits 0 (or 1 with the reason). Everything before that
exec (device plugin, scheduling, rank table, ConfigMap volume updates, zoo-launch) is the real thing.
"""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

import pytest
from e2e_helpers import E2E, REPO, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
JOB = "asc"
ANNOTATION = "ascend.kubectl.kubernetes.io/ascend-910-configuration"


class TableWatch:
    """`kubectl get configmap -w` of the job's ConfigMaps, recording every hccl.json status seen."""

    def __init__(self, e2e: E2E) -> None:
        self.statuses: list[str] = []
        self.proc = subprocess.Popen(
            ["kubectl", "-n", e2e.namespace, "get", "configmaps", "-l", f"modelzoo.io/job-name={JOB}", "-w",
             "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=e2e.cluster.env)
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


def ascend_job(e2e: E2E) -> dict[str, Any]:
    """4 ranks, 2 per node, rank-table launch (the default on Ascend910), rankcheck as zoo-train."""
    path = f"/zoo-e2e-bin:{REPO / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    return {
        "apiVersion": "modelzoo.io/v1alpha1",
        "kind": "ZooTrainingJob",
        "metadata": {"name": JOB},
        "spec": {
            "model": "glore_res50",
            "image": "zoo-operator/workload-ascend:0.1.0",
            "device": {"type": "Ascend910", "perNode": 2},
            "replicas": 4,
            "dataset": {"volume": {"hostPath": {"path": str(e2e.data["images"])}}, "trainPath": "train",
                        "numClasses": 3},
            "runPolicy": {"backoffLimit": 0, "cleanPodPolicy": "None"},
            "podTemplate": {
                "env": [{"name": "PATH", "value": path}],
                "volumes": [{"name": "rankcheck",
                             "hostPath": {"path": str(REPO / "tests" / "e2e" / "rankcheck"), "type": "Directory"}}],
                "volumeMounts": [{"name": "rankcheck", "mountPath": "/zoo-e2e-bin", "readOnly": True}],
            },
        },
    }


def test_rank_table_from_the_device_plugin_reaches_every_rank(e2e: E2E) -> None:
    watch = TableWatch(e2e)
    try:
        e2e.apply(ascend_job(e2e))
        status = e2e.wait_phase(JOB, {"Succeeded", "Failed"}, timeout=300)
    finally:
        seen = watch.stop()
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    assert seen[0] == "initializing" and seen[-1] == "completed", seen
    assert status["rankTable"]["status"] == "completed"

    table = json.loads(e2e.get("configmap", f"{JOB}-ranktable")["data"]["hccl.json"])
    ranks = json.loads(e2e.get("configmap", f"{JOB}-ranktable")["data"]["ranks.json"])
    pods = {p["metadata"]["name"]: p for p in e2e.pods(JOB)}
    assert sorted(pods) == [f"{JOB}-worker-{i}" for i in range(4)]
    nodes = {p["spec"]["nodeName"] for p in pods.values()}
    assert nodes <= {"ascend-node-1", "ascend-node-2"}
    # The table as hccl_tools writes it: version 1.0, string values, servers sorted, ranks dense in that order.
    assert table["version"] == "1.0" and table["server_count"] == str(len(nodes))
    server_ids = [s["server_id"] for s in table["server_list"]]
    assert server_ids == sorted(server_ids)
    flat = [d for s in table["server_list"] for d in s["device"]]
    assert [d["rank_id"] for d in flat] == ["0", "1", "2", "3"]
    for name, pod in pods.items():
        plugin = json.loads(pod["metadata"]["annotations"][ANNOTATION])  # written by the fake device plugin
        (device,) = plugin["devices"]
        entry = ranks[name]
        assert (entry["server_id"], entry["device_id"]) == (plugin["server_id"], device["device_id"])
        server = next(s for s in table["server_list"] if s["server_id"] == plugin["server_id"])
        assert {"device_id": device["device_id"], "device_ip": device["device_ip"],
                "rank_id": entry["rank_id"]} in server["device"]
        # What the rank saw at its mount path, checked inside the pod by rankcheck/zoo-train.
        log = e2e.logs(name)
        assert f"zoo-launch: RANK_ID={entry['rank_id']}" in log and f"DEVICE_ID={device['device_id']}" in log
        assert f"rankcheck ok pod={name} RANK_ID={entry['rank_id']}" in log, log[-2000:]
        assert "RANK_SIZE=4" in log
    assert status["ranks"]["succeeded"] == 4
    assert wait_for("the RankTableCompleted event",
                    lambda: "RankTableCompleted" in [e["reason"] for e in e2e.events(JOB)], timeout=30)
