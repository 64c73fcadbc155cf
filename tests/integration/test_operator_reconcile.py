"""The operator against a real apiserver and kubelet: objects, rank table, run policy, GC, restarts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubehelpers import wait_for
from operator_fixtures import OperatorProcess, apply, cpu_job, events, get, items, job_status, wait_phase

pytestmark = pytest.mark.integration
NO_NODE = {"nodeSelector": {"zoo-test/no-such-node": "true"}}


def pods_of(cluster: Any, ns: str, job: str) -> list[dict[str, Any]]:
    return items(cluster, ns, "pods", f"modelzoo.io/job-name={job}")


def node_ips(cluster: Any) -> dict[str, str]:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {
        n["metadata"]["name"]: next(
            a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"
        )
        for n in nodes
    }


@pytest.mark.slow  # about a minute: two attempts of MindSpore starting and failing on 4 ranks
def test_ascend_job_gets_owned_objects_and_a_completed_rank_table(
    ztj_crd: Any, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    # A real (tiny) dataset on the node, so the workload gets past its dataset check (exit 66, permanent) and
    # fails where this machine really fails: starting MindSpore on an Ascend device it does not have.
    zoo_data = Path(sys.executable).parent / "zoo-data"
    subprocess.run(
        [
            str(zoo_data),
            "synth",
            "--layout",
            "imagefolder",
            "--out",
            str(tmp_path / "data"),
            "--classes",
            "3",
            "--per-class",
            "2",
            "--size",
            "32",
        ],
        check=True,
        capture_output=True,
    )
    job = cpu_job(
        "npu",
        device={"type": "Ascend910", "perNode": 2},
        image="zoo-operator/workload-ascend:dev",
        replicas=4,
        runPolicy={"backoffLimit": 1, "cleanPodPolicy": "None"},
        dataset={
            "volume": {"hostPath": {"path": str(tmp_path / "data")}},
            "trainPath": "train",
            "numClasses": 3,
        },
        # The nodes without the simulated NPU (hack/cluster/nodes.yaml): MindSpore meets this machine.
        podTemplate={
            "nodeSelector": {"zoo.local/ascend-plugin": "nosim"},
            "tolerations": [{"key": "zoo.local/no-npu", "operator": "Exists"}],
        },
    )
    apply(ztj_crd, namespace, job)
    uid = get(ztj_crd, namespace, "ztj", "npu")["metadata"]["uid"]
    pods = wait_for("4 worker pods", lambda: (p := pods_of(ztj_crd, namespace, "npu")) and len(p) == 4 and p)
    for obj in [
        *pods,
        get(ztj_crd, namespace, "service", "npu"),
        get(ztj_crd, namespace, "configmap", "npu-ranktable"),
    ]:
        owner = obj["metadata"]["ownerReferences"][0]
        assert owner["uid"] == uid and owner["controller"] is True and owner["kind"] == "ZooTrainingJob"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "zoo-operator"
    names = sorted(p["metadata"]["name"] for p in pods)
    assert names == [f"npu-worker-{i}" for i in range(4)]
    for pod in pods:
        assert pod["spec"]["hostname"] == pod["metadata"]["name"] and pod["spec"]["subdomain"] == "npu"
        assert pod["spec"]["containers"][0]["resources"]["limits"]["huawei.com/Ascend910"] == "1"

    def completed() -> dict[str, Any] | None:
        cm = get(ztj_crd, namespace, "configmap", "npu-ranktable")
        table = json.loads(cm["data"].get("hccl.json") or "{}")
        return table if table.get("status") == "completed" else None

    table = wait_for("rank table completed", completed, timeout=90)
    ips = node_ips(ztj_crd)
    placed = {p["metadata"]["name"]: ips[p["spec"]["nodeName"]] for p in pods_of(ztj_crd, namespace, "npu")}
    servers = [s["server_id"] for s in table["server_list"]]
    assert servers == sorted(set(placed.values()))  # string order, one entry per server
    assert [d["rank_id"] for s in table["server_list"] for d in s["device"]] == ["0", "1", "2", "3"]
    per_server = {s["server_id"]: len(s["device"]) for s in table["server_list"]}
    assert per_server == {ip: list(placed.values()).count(ip) for ip in set(placed.values())}
    status = wait_for(
        "status.rankTable completed",
        lambda: (
            (s := job_status(ztj_crd, namespace, "npu")).get("rankTable", {}).get("status") == "completed"
            and s
        ),
    )
    ready = next(c for c in status["conditions"] if c["type"] == "RankTableReady")
    assert ready["status"] == "True"
    # This machine has no NPU, so MindSpore refuses the Ascend target and exits non-zero but retryable: the operator
    # restarts the whole gang once (backoffLimit 1), then fails the job; exit codes and last log lines stay.
    status = wait_phase(ztj_crd, namespace, "npu", {"Restarting"}, timeout=180)
    assert status["restarts"] == 1 and "restarting all ranks" in status["message"]
    status = wait_phase(ztj_crd, namespace, "npu", {"Failed"}, timeout=240)
    print("final status:", json.dumps(status, indent=1))
    assert status["reason"] == "BackoffLimitExceeded" and status["restarts"] == 1
    attempts = {
        p["metadata"]["annotations"]["modelzoo.io/attempt"] for p in pods_of(ztj_crd, namespace, "npu")
    }
    assert attempts == {"1"}
    ended = [s for s in status["rankSummaries"] if "exitCode" in s]
    assert ended and all(s["exitCode"] not in (0, 64, 66) and s.get("lastLines") for s in ended)
    restarting = next(c for c in status["conditions"] if c["type"] == "Restarting")
    assert restarting["status"] == "False"


def test_invalid_spec_fails_without_pods(ztj_crd: Any, namespace: str, operator: OperatorProcess) -> None:
    apply(ztj_crd, namespace, cpu_job("bad", hyperparameters={"learning_rate": 0.1}))
    status = wait_phase(ztj_crd, namespace, "bad", {"Failed"})
    assert status["reason"] == "InvalidSpec"
    assert status["message"].startswith("spec.hyperparameters.learning_rate: unknown hyperparameter")
    assert "lr_max" in status["message"]
    assert pods_of(ztj_crd, namespace, "bad") == []
    assert get(ztj_crd, namespace, "service", "bad") is None
    wait_for(
        "InvalidSpec event",
        lambda: any(e["reason"] == "InvalidSpec" for e in events(ztj_crd, namespace, "bad")),
    )


def test_unschedulable_job_fails_after_the_scheduling_timeout(
    ztj_crd: Any, namespace: str, operator: OperatorProcess
) -> None:
    apply(
        ztj_crd, namespace, cpu_job("stuck", podTemplate=NO_NODE, runPolicy={"schedulingTimeoutSeconds": 5})
    )
    status = wait_phase(ztj_crd, namespace, "stuck", {"Failed"}, timeout=90)
    assert status["reason"] == "SchedulingTimeout"
    assert "schedulingTimeoutSeconds=5" in status["message"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and status.get("completionTime")
    # cleanPodPolicy Running (the default) removes pods that never ran.
    wait_for(
        "pods cleaned up",
        lambda: (
            not [
                p for p in pods_of(ztj_crd, namespace, "stuck") if not p["metadata"].get("deletionTimestamp")
            ]
        ),
    )


def test_unknown_image_fails_with_image_pull_reason(
    ztj_crd: Any, namespace: str, operator: OperatorProcess
) -> None:
    apply(
        ztj_crd,
        namespace,
        cpu_job(
            "pull",
            image="zoo-operator/no-such-image:1",
            replicas=1,
            runPolicy={"schedulingTimeoutSeconds": 3},
        ),
    )
    status = wait_phase(ztj_crd, namespace, "pull", {"Failed"}, timeout=90)
    assert status["reason"] == "ImagePullFailed"
    assert "schedulingTimeoutSeconds=3" in status["message"] and "ImagePull" in status["message"]


@pytest.mark.slow  # 30-70 s: two operator starts, a suspend and a resume
def test_suspend_resume_and_operator_restart_do_not_duplicate(
    ztj_crd: Any, namespace: str, operator: OperatorProcess
) -> None:
    apply(ztj_crd, namespace, cpu_job("sus", podTemplate=NO_NODE))
    first = wait_for("3 pods", lambda: (p := pods_of(ztj_crd, namespace, "sus")) and len(p) == 3 and p)
    uids = sorted(p["metadata"]["uid"] for p in first)
    operator.stop()
    operator.start()
    wait_phase(ztj_crd, namespace, "sus", {"Pending"})
    # Let the restarted operator run its passes (its initial listing enqueues the job): it must adopt the pods,
    # not create new ones.
    time.sleep(6)
    assert sorted(p["metadata"]["uid"] for p in pods_of(ztj_crd, namespace, "sus")) == uids

    ztj_crd.kubectl(
        "patch",
        "ztj",
        "sus",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"runPolicy": {"suspend": true}}}',
    )
    wait_phase(ztj_crd, namespace, "sus", {"Suspended"})
    wait_for("pods deleted", lambda: pods_of(ztj_crd, namespace, "sus") == [], timeout=60)
    ztj_crd.kubectl(
        "patch",
        "ztj",
        "sus",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"runPolicy": {"suspend": false}}}',
    )
    wait_for("pods recreated", lambda: len(pods_of(ztj_crd, namespace, "sus")) == 3, timeout=60)
    status = wait_phase(ztj_crd, namespace, "sus", {"Pending"})
    suspended = next(c for c in status["conditions"] if c["type"] == "Suspended")
    assert suspended["status"] == "False" and suspended["reason"] == "JobResumed"


def test_gang_without_volcano_is_reported_and_times_out(
    ztj_crd: Any, namespace: str, operator: OperatorProcess
) -> None:
    apply(
        ztj_crd,
        namespace,
        # No spec.scheduling.queue: once test_kueue.py has installed Kueue on this cluster, a queue with no
        # LocalQueue holds the pods (QueueNotFound, issue 24); the queue label is test_render.py's.
        cpu_job("gang", scheduling={"gang": True}, runPolicy={"schedulingTimeoutSeconds": 5}),
    )
    pods = wait_for("3 pods", lambda: (p := pods_of(ztj_crd, namespace, "gang")) and len(p) == 3 and p)
    for pod in pods:
        assert pod["spec"]["schedulerName"] == "volcano"
        assert pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == "gang"
    status = wait_phase(ztj_crd, namespace, "gang", {"Failed"}, timeout=90)
    group = next(c for c in status["conditions"] if c["type"] == "PodGroupReady")
    assert group["status"] == "False" and group["reason"] == "VolcanoNotInstalled"
    assert status["reason"] == "SchedulingTimeout"


def test_deleting_the_job_removes_everything(ztj_crd: Any, namespace: str, operator: OperatorProcess) -> None:
    apply(ztj_crd, namespace, cpu_job("gone", podTemplate=NO_NODE))
    wait_for("pods", lambda: len(pods_of(ztj_crd, namespace, "gone")) == 3)
    assert get(ztj_crd, namespace, "configmap", "gone-launch") is not None
    assert not get(ztj_crd, namespace, "ztj", "gone")["metadata"].get("finalizers")
    # No finalizer: the job can be deleted even with the operator gone; the garbage collector does the rest.
    operator.stop()
    ztj_crd.kubectl("delete", "ztj", "gone", "-n", namespace, "--wait=true", "--timeout=60s")

    def all_gone() -> bool:
        return (
            not pods_of(ztj_crd, namespace, "gone")
            and get(ztj_crd, namespace, "service", "gone") is None
            and get(ztj_crd, namespace, "configmap", "gone-launch") is None
        )

    wait_for("owned objects garbage-collected", all_gone, timeout=90)
