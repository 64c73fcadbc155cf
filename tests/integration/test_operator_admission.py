"""Pods the apiserver refuses: a ResourceQuota of one pod makes the job wait, then fail, holding nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubehelpers import wait_for
from operator_fixtures import OperatorProcess, apply, cpu_job, items, wait_phase

pytestmark = pytest.mark.integration
NO_NODE = {"nodeSelector": {"zoo-test/no-such-node": "true"}}


def test_a_one_pod_quota_fails_the_job_and_frees_the_quota(
    ztj_crd: Any, namespace: str, operator: OperatorProcess
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "one-pod"},
        "spec": {"hard": {"pods": "1"}},
    }
    ztj_crd.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(quota))
    wait_for(
        "quota status",
        lambda: (
            json.loads(
                ztj_crd.kubectl("get", "resourcequota", "one-pod", "-n", namespace, "-o", "json").stdout
            )
            .get("status", {})
            .get("hard")
        ),
    )
    apply(
        ztj_crd, namespace, cpu_job("quota", podTemplate=NO_NODE, runPolicy={"schedulingTimeoutSeconds": 8})
    )

    def waiting() -> dict[str, Any] | None:
        st = json.loads(ztj_crd.kubectl("get", "ztj", "quota", "-n", namespace, "-o", "json").stdout).get(
            "status"
        )
        cond = next((x for x in (st or {}).get("conditions", []) if x["type"] == "PodsAdmitted"), None)
        return cond if cond and cond["status"] == "False" else None

    cond = wait_for("PodsAdmitted=False", waiting, timeout=60)
    assert cond["reason"] == "QuotaExceeded" and "exceeded quota: one-pod" in cond["message"]
    status = wait_phase(ztj_crd, namespace, "quota", {"Failed"}, timeout=60)
    # (the one admitted pod cannot be scheduled either: its timeout is reported as the quota refusal it waited on)
    assert status["reason"] == "AdmissionRefused" and "exceeded quota: one-pod" in status["message"]
    wait_for(
        "pods deleted",
        lambda: items(ztj_crd, namespace, "pods", "modelzoo.io/job-name=quota") == [],
        timeout=60,
    )
