"""Issue 24 against a real apiserver: objects of someone else with the names and labels of a job's own.

A ConfigMap named (and labelled) like the job's rank table, planted before the job, is never used, patched or
deleted: the job waits with condition ObjectsOwned=False and an Event, creates no pods, and goes on once the
ConfigMap is deleted. A pod labelled like one of the job's ranks, with no ownerReference to it, is never
counted (the job creates both of its own ranks) and never deleted.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubehelpers import wait_for
from operator_fixtures import OperatorProcess, apply, cpu_job, events, get, items, job_status

pytestmark = pytest.mark.integration
NO_NODE = {"nodeSelector": {"zoo-test/no-such-node": "true"}}
LABELS = {"modelzoo.io/job-name": "own", "app.kubernetes.io/managed-by": "zoo-operator"}


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), None)


def test_foreign_rank_table_and_rank_look_alike_are_left_alone(
    ztj_crd: Any, namespace: str, operator: OperatorProcess
) -> None:
    cluster = ztj_crd
    planted = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "own-ranktable", "labels": LABELS},
        "data": {"hccl.json": '{"status": "completed", "server_list": ["planted"]}'},
    }
    intruder = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "own-intruder",
            "labels": {**LABELS, "modelzoo.io/role": "worker", "modelzoo.io/rank": "1"},
        },
        "spec": {
            **NO_NODE,
            "containers": [{"name": "c", "image": "zoo-operator/workload-cpu:dev", "command": ["true"]}],
        },
    }
    apply(cluster, namespace, planted)
    apply(cluster, namespace, intruder)
    cm_version = get(cluster, namespace, "configmap", "own-ranktable")["metadata"]["resourceVersion"]
    pod_version = get(cluster, namespace, "pod", "own-intruder")["metadata"]["resourceVersion"]
    body = cpu_job(
        "own", device={"type": "Ascend910"}, image="zoo-operator/workload-ascend:dev", podTemplate=NO_NODE
    )
    apply(cluster, namespace, body)
    uid = get(cluster, namespace, "ztj", "own")["metadata"]["uid"]

    def own_pods() -> list[str]:
        pods = items(cluster, namespace, "pods", "modelzoo.io/job-name=own")
        return sorted(
            p["metadata"]["name"]
            for p in pods
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        )

    def said() -> str:
        st = job_status(cluster, namespace, "own")
        return f"status {st.get('phase')}/{st.get('reason')}: {st.get('message')}; own pods {own_pods()}"

    status = wait_for(
        "condition ObjectsOwned=False",
        lambda: (
            (s := job_status(cluster, namespace, "own"))
            and (cond := condition(s, "ObjectsOwned"))
            and cond["status"] == "False"
            and s
        ),
        timeout=120,
        explain=said,
    )
    cond = condition(status, "ObjectsOwned")
    assert cond is not None and cond["reason"] == "ObjectNotOwned"
    assert "ConfigMap own-ranktable" in cond["message"]
    assert f"kubectl delete configmap own-ranktable -n {namespace}" in cond["message"]
    assert status["phase"] == "Pending" and status["reason"] == "ObjectNotOwned"
    warned = wait_for(
        "a Warning Event ObjectNotOwned",
        lambda: [e for e in events(cluster, namespace, "own") if e["reason"] == "ObjectNotOwned"],
        timeout=60,
        explain=said,
    )
    assert warned[0]["type"] == "Warning" and "own-ranktable" in warned[0]["message"]
    # Several passes later (the operator looks again every guards.RECHECK_SECONDS): nothing written by name.
    time.sleep(12)
    assert own_pods() == [], said()
    cm = get(cluster, namespace, "configmap", "own-ranktable")
    assert cm["metadata"]["resourceVersion"] == cm_version and cm["data"] == planted["data"]
    assert not cm["metadata"].get("ownerReferences")
    pod = get(cluster, namespace, "pod", "own-intruder")
    assert pod["metadata"]["resourceVersion"] == pod_version and not pod["metadata"].get("deletionTimestamp")

    cluster.kubectl("delete", "configmap", "own-ranktable", "-n", namespace)
    # Both ranks are created: the look-alike labelled rank 1 is not counted as the job's rank 1.
    wait_for(
        "the job's own 2 ranks",
        lambda: own_pods() == ["own-worker-0", "own-worker-1"],
        timeout=120,
        explain=said,
    )
    table = wait_for(
        "the job's own rank-table ConfigMap",
        lambda: (
            (cm := get(cluster, namespace, "configmap", "own-ranktable"))
            and cm["metadata"].get("ownerReferences")
            and "hccl.json" in (cm.get("data") or {})  # created, then written with the table
            and cm
        ),
        timeout=60,
        explain=said,
    )
    owner = table["metadata"]["ownerReferences"][0]
    assert owner["uid"] == uid and owner["controller"] is True
    assert json.loads(table["data"]["hccl.json"])["status"] == "initializing"  # no device of anyone's
    status = wait_for(
        "condition ObjectsOwned=True",
        lambda: (
            (s := job_status(cluster, namespace, "own"))
            and (cond := condition(s, "ObjectsOwned"))
            and cond["status"] == "True"
            and s
        ),
        timeout=60,
        explain=said,
    )
    assert "own-intruder" not in {r.get("pod") for r in status.get("rankSummaries") or []}
    pod = get(cluster, namespace, "pod", "own-intruder")
    assert pod is not None and not pod["metadata"].get("deletionTimestamp"), "the look-alike is never deleted"
