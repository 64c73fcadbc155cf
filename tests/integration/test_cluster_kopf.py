"""A kopf operator runs inside a pod and handles objects through the real API server (in-cluster login)."""

from __future__ import annotations

import pytest
from kubehelpers import Kube, python_pod, wait_for

pytestmark = pytest.mark.integration

HANDLERS = """
import kopf

@kopf.on.create("configmaps", labels={"kopf-test": "yes"})
def created(name, patch, **_):
    patch.metadata.annotations["seen-by"] = "kopf-in-a-pod"
"""


def test_kopf_in_a_pod_logs_in_with_its_service_account_and_handles_objects(kube: Kube) -> None:
    # kopf also lists CRDs and namespaces cluster-wide at start-up (and retries slowly while refused).
    binding = f"{kube.ns}-kopf"
    account = f"--serviceaccount={kube.ns}:default"
    kube.cluster.kubectl("create", "clusterrolebinding", binding, "--clusterrole=cluster-admin", account)
    try:
        run_kopf_and_check(kube)
    finally:
        kube.cluster.kubectl("delete", "clusterrolebinding", binding, check=False)


def run_kopf_and_check(kube: Kube) -> None:
    """Start kopf with one handler in a pod, create an object, and wait for the handler's mark on it."""
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
