"""A kopf operator runs inside a pod and handles objects through the real API server (in-cluster login)."""

from __future__ import annotations

import pytest
from kubehelpers import python_pod, wait_for

pytestmark = pytest.mark.integration

HANDLERS = """
import kopf

@kopf.on.create("configmaps", labels={"kopf-test": "yes"})
def created(name, patch, **_):
    patch.metadata.annotations["seen-by"] = "kopf-in-a-pod"
"""


def test_kopf_in_a_pod_logs_in_with_its_service_account_and_handles_objects(kube):
    kube.cluster.kubectl(
        "create",
        "rolebinding",
        "kopf-admin",
        "-n",
        kube.ns,
        "--clusterrole=admin",
        f"--serviceaccount={kube.ns}:default",
    )
    operator = python_pod(
        "kopf",
        "",
        volumes=[{"name": "h", "configMap": {"name": "handlers"}}],
        container={
            "image": "zoo-operator/operator:dev",
            "command": ["kopf", "run", "--standalone", f"--namespace={kube.ns}", "/handlers/handlers.py"],
            "volumeMounts": [{"name": "h", "mountPath": "/handlers"}],
        },
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "handlers"},
            "data": {"handlers.py": HANDLERS},
        },
        operator,
    )
    wait_for("kopf running", lambda: kube.pod_phase("kopf") == "Running")
    probe = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "probe", "labels": {"kopf-test": "yes"}},
    }
    kube.apply(probe)

    def seen() -> str | None:
        return ((kube.get("configmap", "probe") or {}).get("metadata", {}).get("annotations") or {}).get(
            "seen-by"
        )

    assert wait_for("kopf to handle the config map", seen, 60) == "kopf-in-a-pod"
