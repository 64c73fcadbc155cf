"""Real Kueue (v0.17.0, built by hack/cluster/build-kueue.sh, started by `zoo-cluster kueue`) with the operator:
admission, queueing behind a full quota, and preemption by a higher-priority job.

Kueue manages pods only in namespaces labelled MANAGED_LABEL=true; each test labels its own namespace and makes
its own ResourceFlavor/ClusterQueue (cluster-scoped, named after the namespace) and LocalQueue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubehelpers import python_pod, wait_for
from operator_fixtures import (
    OperatorProcess,
    apply,
    cpu_job,
    events,
    items,
    job_status,
    tiny_images,
    wait_phase,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MANAGED_LABEL = "modelzoo.io/kueue-managed"
GATE = "kueue.x-k8s.io/admission"
TINY = {
    "width": 8,
    "layers": [1, 1, 1, 1],
    "image_size": 32,
    "epochs": 1,
    "steps_per_epoch": 3,
    "batch_size": 2,
}


@pytest.fixture(scope="session")
def kueue(cluster: Any) -> Any:
    """Kueue running in the test cluster (`zoo-cluster kueue`, a no-op when already running)."""
    if os.environ.get("ZOO_TEST_KUBECONFIG"):
        pytest.fail("the Kueue tests need the suite's own local cluster (unset ZOO_TEST_KUBECONFIG)")
    sys.path.insert(0, str(REPO / "hack" / "cluster"))
    from zoocluster import config as cluster_config

    env = cluster_config.suite_env(dict(os.environ))
    proc = subprocess.run(
        [str(REPO / "hack" / "cluster" / "zoo-cluster"), "kueue"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"zoo-cluster kueue failed:\n{proc.stdout}\n{proc.stderr}"
    return cluster


def queues(cluster: Any, namespace: str, cpu: str, preemption: bool = False) -> str:
    """A ResourceFlavor, a ClusterQueue with `cpu` of quota and a LocalQueue `lq`; returns the ClusterQueue name."""
    cq = f"cq-{namespace}"
    cluster.kubectl("label", "namespace", namespace, f"{MANAGED_LABEL}=true")
    spec: dict[str, Any] = {
        "namespaceSelector": {},
        "resourceGroups": [
            {
                # Memory is covered too (every rank requests memory, issue 24; Kueue refuses a workload that
                # requests a resource its ClusterQueue does not cover), with room to spare: CPU is the limit here.
                "coveredResources": ["cpu", "memory"],
                "flavors": [
                    {
                        "name": f"rf-{namespace}",
                        "resources": [
                            {"name": "cpu", "nominalQuota": cpu},
                            {"name": "memory", "nominalQuota": "4Ti"},
                        ],
                    }
                ],
            }
        ],
    }
    if preemption:
        spec["preemption"] = {"withinClusterQueue": "LowerPriority"}
    objects = [
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ResourceFlavor",
            "metadata": {"name": f"rf-{namespace}"},
        },
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ClusterQueue",
            "metadata": {"name": cq},
            "spec": spec,
        },
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": {"name": "lq", "namespace": namespace},
            "spec": {"clusterQueue": cq},
        },
    ]
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )

    def active() -> bool:
        out = cluster.kubectl("get", "clusterqueue", cq, "-o", "json", check=False)
        conds = json.loads(out.stdout).get("status", {}).get("conditions", []) if out.returncode == 0 else []
        return any(c["type"] == "Active" and c["status"] == "True" for c in conds)

    wait_for(f"ClusterQueue {cq} Active", active, timeout=60)
    return cq


def kueue_state(cluster: Any, namespace: str) -> str:
    """What Kueue holds in the namespace, for a failure message: each Workload's conditions and each pod's phase,
    gates, finalizers and Kueue annotations (a stuck admission is otherwise invisible)."""
    lines = []
    for wl in items(cluster, namespace, "workloads.kueue.x-k8s.io", ""):
        conds = ", ".join(
            f"{c['type']}={c['status']}({c.get('reason', '')})"
            for c in wl.get("status", {}).get("conditions", [])
        )
        lines.append(f"workload {wl['metadata']['name']}: {conds or 'no conditions'}")
    for pod in items(cluster, namespace, "pods", ""):
        meta, spec = pod["metadata"], pod["spec"]
        notes = {k: v for k, v in (meta.get("annotations") or {}).items() if "kueue" in k}
        lines.append(
            f"pod {meta['name']}: {pod.get('status', {}).get('phase')}"
            f"{' deleting' if meta.get('deletionTimestamp') else ''}"
            f" gates={[g['name'] for g in spec.get('schedulingGates') or []]}"
            f" finalizers={meta.get('finalizers') or []} {notes}"
        )
    return "; ".join(lines) or "no workloads or pods"


def cleanup_queues(cluster: Any, namespace: str) -> None:
    cluster.kubectl("delete", "clusterqueue", f"cq-{namespace}", "--wait=false", check=False)
    cluster.kubectl("delete", "resourceflavor", f"rf-{namespace}", "--wait=false", check=False)


def pod_gates(cluster: Any, namespace: str, selector: str) -> dict[str, list[str]]:
    """Each matching pod's scheduling gates."""
    return {
        p["metadata"]["name"]: [g["name"] for g in p["spec"].get("schedulingGates") or []]
        for p in items(cluster, namespace, "pods", selector)
    }


def test_plain_pods_are_gated_admitted_and_queued(kueue: Any, namespace: str) -> None:
    """The manager, its webhook and a LocalQueue work: a pod over the free quota waits gated until quota frees."""
    queues(kueue, namespace, "500m")
    labels = {"kueue.x-k8s.io/queue-name": "lq"}
    cpu = {"resources": {"requests": {"cpu": "400m"}}}
    for name in ("first", "second"):
        kueue.kubectl(
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            input=json.dumps(python_pod(name, "import time; time.sleep(600)", labels=labels, container=cpu)),
        )
    wait_for(
        "first Running",
        lambda: (
            kueue.kubectl("get", "pod", "first", "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
            == "Running"
        ),
        timeout=120,
    )
    time.sleep(3)
    second = json.loads(kueue.kubectl("get", "pod", "second", "-n", namespace, "-o", "json").stdout)
    assert GATE in [g["name"] for g in second["spec"].get("schedulingGates", [])]
    kueue.kubectl("delete", "pod", "first", "-n", namespace, "--wait=false")
    wait_for(
        "second Running once first's quota is free",
        lambda: (
            kueue.kubectl("get", "pod", "second", "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
            == "Running"
        ),
        timeout=120,
    )
    cleanup_queues(kueue, namespace)


def test_unlabelled_namespace_is_not_managed(kueue: Any, namespace: str) -> None:
    """A queue-name label outside the managed namespaces is ignored: the pod runs ungated."""
    kueue.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(python_pod("free", "print('ok')", labels={"kueue.x-k8s.io/queue-name": "lq"})),
    )
    body = json.loads(kueue.kubectl("get", "pod", "free", "-n", namespace, "-o", "json").stdout)
    assert not body["spec"].get("schedulingGates")


def _data(tmp_path: Path) -> dict[str, Any]:
    data = tiny_images(tmp_path)
    return {"volume": {"hostPath": {"path": str(data)}}, "trainPath": "train", "numClasses": 3}


def _queued_job(
    name: str, dataset: dict[str, Any], hyper: dict[str, Any], **scheduling: Any
) -> dict[str, Any]:
    # replicas 1 on CPU: a dynamic launch, so two pods (scheduler + worker) of 100m each in one Kueue pod group.
    return cpu_job(
        name,
        replicas=1,
        hyperparameters=hyper,
        dataset=dataset,
        resources={"requests": {"cpu": "100m"}},
        scheduling={"queue": "lq", **scheduling},
        # The default cleanPodPolicy (Running) deletes the scheduler pod at success: the second job
        # of (b) is admitted only if the operator still lets Kueue finish the first's pod group.
        runPolicy={"backoffLimit": 0, "schedulingTimeoutSeconds": 20},
    )


def test_job_admitted_and_second_job_waits_behind_full_quota(
    kueue: Any, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """(a) a queued job is admitted and runs; (b) the next one waits gated past schedulingTimeoutSeconds (20 s)
    without failing, and runs when the first finishes and frees the quota."""
    queues(kueue, namespace, "200m")  # one job's two pods
    dataset = _data(tmp_path)
    apply(kueue, namespace, _queued_job("first", dataset, {**TINY, "epochs": 600}))
    wait_for(
        "first's pods ungated",
        lambda: (
            (g := pod_gates(kueue, namespace, "modelzoo.io/job-name=first"))
            and len(g) == 2
            and not any(g.values())
        ),
        timeout=120,
    )
    apply(kueue, namespace, _queued_job("second", dataset, TINY))
    wait_for(
        "second's pods created gated",
        lambda: (
            (g := pod_gates(kueue, namespace, "modelzoo.io/job-name=second"))
            and len(g) == 2
            and all(GATE in v for v in g.values())
        ),
        timeout=60,
    )
    time.sleep(25)  # past second's schedulingTimeoutSeconds (20)
    assert job_status(kueue, namespace, "first")["phase"] == "Running", "first finished too soon to prove (b)"
    second = job_status(kueue, namespace, "second")
    assert second["phase"] == "Pending", second.get("message")
    assert all(GATE in v for v in pod_gates(kueue, namespace, "modelzoo.io/job-name=second").values())
    status = wait_phase(kueue, namespace, "first", {"Succeeded", "Failed"}, timeout=900)
    assert status["phase"] == "Succeeded", status.get("message")
    second = wait_phase(kueue, namespace, "second", {"Succeeded", "Failed"}, timeout=480)
    assert second["phase"] == "Succeeded", second.get("message")
    assert second["restarts"] == 0
    cleanup_queues(kueue, namespace)


def test_preempted_job_waits_gated_and_runs_again(
    kueue: Any, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """(c) a higher-priority job preempts a running lower-priority one (Kueue orders by the pods' PriorityClass);
    the preempted job is not failed, waits gated, and runs again once admitted."""
    queues(kueue, namespace, "200m", preemption=True)
    low_pc, high_pc = f"low-{namespace}", f"high-{namespace}"
    kueue.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "scheduling.k8s.io/v1",
                        "kind": "PriorityClass",
                        "metadata": {"name": pc},
                        "value": value,
                        "preemptionPolicy": "Never",
                    }
                    for pc, value in ((low_pc, 100), (high_pc, 1000))
                ],
            }
        ),
    )
    dataset = _data(tmp_path)
    long_run = {**TINY, "epochs": 1000}
    try:
        low_job = _queued_job(
            "low", dataset, {**long_run, "save_checkpoint_epochs": 1}, priorityClassName=low_pc
        )
        low_job["spec"]["checkpoint"] = {
            "hostPath": str(tmp_path / "checkpoints")
        }  # durable: survives the pods
        apply(kueue, namespace, low_job)
        wait_for(
            "low's first checkpoint",
            lambda: job_status(kueue, namespace, "low").get("lastCheckpoint"),
            timeout=240,
        )
        low_uids = {p["metadata"]["uid"] for p in items(kueue, namespace, "pods", "modelzoo.io/job-name=low")}
        apply(
            kueue, namespace, _queued_job("high", dataset, {**TINY, "epochs": 10}, priorityClassName=high_pc)
        )
        # Kueue evicts low's pod group (deletes its pods); the operator creates them again, gated.
        wait_for(
            "low's pods replaced and gated",
            lambda: (
                (pods := items(kueue, namespace, "pods", "modelzoo.io/job-name=low"))
                and len(pods) == 2
                and not {p["metadata"]["uid"] for p in pods} & low_uids
                and all(GATE in [g["name"] for g in p["spec"].get("schedulingGates") or []] for p in pods)
            ),
            timeout=180,
        )
        # A preemption is not a failure: a restart from the checkpoint, none of backoffLimit (0) spent.
        low = job_status(kueue, namespace, "low")
        assert (low["phase"], low["reason"]) == ("Restarting", "Evicted") and "Kueue" in low["message"], low
        high = wait_phase(
            kueue,
            namespace,
            "high",
            {"Succeeded", "Failed"},
            timeout=480,
            explain=lambda: kueue_state(kueue, namespace),
        )
        assert high["phase"] == "Succeeded", high.get("message")
        low = job_status(kueue, namespace, "low")
        assert low["phase"] != "Failed", low.get("message")
        assert low["restarts"] == low["stoppedRestarts"] == 1, low
        wait_phase(
            kueue, namespace, "low", {"Running"}, timeout=240, explain=lambda: kueue_state(kueue, namespace)
        )
        assert not any(pod_gates(kueue, namespace, "modelzoo.io/job-name=low").values())
        # Readmitted, it trains on from its checkpoint instead of from epoch 1.
        resumes = wait_for(
            "low resumed from its checkpoint",
            lambda: job_status(kueue, namespace, "low").get("resumes"),
            timeout=240,
        )
        assert resumes[-1]["restart"] == 1 and resumes[-1]["epoch"] >= 1, resumes
        assert 0 <= resumes[-1]["lostSteps"] <= TINY["steps_per_epoch"], resumes
    finally:
        kueue.kubectl("delete", "priorityclass", low_pc, high_pc, "--wait=false", check=False)
        cleanup_queues(kueue, namespace)


def test_missing_local_queue_is_said_at_once_and_the_job_waits_for_it(
    kueue: Any, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """Issue 24: a job naming a LocalQueue the namespace lacks gets condition QueueFound=False and a Warning
    Event at once, stays Pending without pods (past schedulingTimeoutSeconds, 20 s), and gets its pods once
    the LocalQueue is created."""
    apply(kueue, namespace, _queued_job("lost", _data(tmp_path), TINY))

    def said() -> str:
        st = job_status(kueue, namespace, "lost")
        return f"status {st.get('phase')}/{st.get('reason')}: {st.get('message')}; {kueue_state(kueue, namespace)}"

    def queue_condition(value: str) -> dict[str, Any] | None:
        st = job_status(kueue, namespace, "lost")
        cond = next((c for c in st.get("conditions") or [] if c["type"] == "QueueFound"), None)
        return cond if cond is not None and cond["status"] == value else None

    cond = wait_for("condition QueueFound=False", lambda: queue_condition("False"), timeout=60, explain=said)
    assert cond["reason"] == "QueueNotFound"
    assert "lq" in cond["message"] and f"kubectl get localqueues -n {namespace}" in cond["message"]
    warned = [e for e in events(kueue, namespace, "lost") if e["reason"] == "QueueNotFound"]
    assert warned and warned[0]["type"] == "Warning", said()
    time.sleep(25)  # past schedulingTimeoutSeconds (20): waiting for a queue is not a scheduling failure
    status = job_status(kueue, namespace, "lost")
    assert status["phase"] == "Pending" and status["reason"] == "QueueNotFound", said()
    assert items(kueue, namespace, "pods", "modelzoo.io/job-name=lost") == [], said()
    queues(kueue, namespace, "200m")
    wait_for(
        "the job's 2 pods once LocalQueue lq exists",
        lambda: len(items(kueue, namespace, "pods", "modelzoo.io/job-name=lost")) == 2,
        timeout=90,
        explain=said,
    )
    cond = wait_for("condition QueueFound=True", lambda: queue_condition("True"), timeout=60, explain=said)
    assert cond["reason"] == "QueueFound"
    wait_for(  # admitted by Kueue through the LocalQueue: the job goes on as any queued job
        "the job's pods ungated",
        lambda: (
            (g := pod_gates(kueue, namespace, "modelzoo.io/job-name=lost"))
            and len(g) == 2
            and not any(g.values())
        ),
        timeout=120,
        explain=said,
    )
    cleanup_queues(kueue, namespace)
