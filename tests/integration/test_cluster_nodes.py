"""The local cluster's control plane and nodes, as kubectl sees them."""

from __future__ import annotations

import json

import pytest
from kubehelpers import wait_for

pytestmark = pytest.mark.integration


def test_nodes_are_ready_untainted_with_distinct_addresses(cluster):
    nodes = {
        n["metadata"]["name"]: n
        for n in json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    }
    assert {"cpu-node-1", "ascend-node-1", "ascend-node-2"} <= set(nodes)
    ips = set()
    for node in nodes.values():
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
        # Only the taints nodes.yaml gives (the Volcano-mode, no-NPU and stale-table Ascend nodes'); none from
        # conditions.
        taints = [
            t
            for t in node["spec"].get("taints") or []
            if t["key"]
            not in (
                "zoo.local/volcano-mode",
                "zoo.local/no-npu",
                "zoo.local/stale-table",
                "huawei.com/Ascend910",
            )
        ]
        assert not taints, taints
        ips.add(next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"))
        assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] > 0
    assert len(ips) == len(nodes)
    for name in ("ascend-node-1", "ascend-node-2"):
        assert nodes[name]["status"]["allocatable"]["huawei.com/Ascend910"] == "8"
        assert nodes[name]["metadata"]["labels"]["accelerator"] == "huawei-Ascend910"
    assert "huawei.com/Ascend910" not in nodes["cpu-node-1"]["status"]["capacity"]


def test_server_is_the_pinned_release_with_rbac_and_leases(cluster):
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"].startswith("v1.36."), version
    leases = cluster.kubectl("get", "leases", "-n", "kube-node-lease", "-o", "name").stdout.split()
    assert "lease.coordination.k8s.io/ascend-node-1" in leases
    # RBAC is enforced: the default service account may not list secrets cluster-wide.
    can = cluster.kubectl(
        "auth",
        "can-i",
        "list",
        "secrets",
        "--all-namespaces",
        "--as=system:serviceaccount:default:default",
        check=False,
    )
    assert can.stdout.strip() == "no"


def test_new_namespace_gets_service_account_and_root_ca(cluster, namespace):
    wait_for(
        "default service account",
        lambda: (
            cluster.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0
        ),
        timeout=30,
    )
    ca = wait_for(
        "kube-root-ca.crt",
        lambda: (
            cluster.kubectl(
                "get", "configmap", "kube-root-ca.crt", "-n", namespace, "-o", "json", check=False
            ).stdout
        ),
        timeout=30,
    )
    assert "BEGIN CERTIFICATE" in json.loads(ca)["data"]["ca.crt"]


def test_helm_reaches_the_cluster(cluster) -> None:
    # helm's list talks to the API server (its release storage is Secrets): an empty table, no error.
    out = cluster.helm("list", "--all-namespaces", "-o", "json")
    assert out.stdout.strip() == "[]"
