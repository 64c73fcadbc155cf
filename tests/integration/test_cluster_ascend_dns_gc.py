"""Ascend device annotations, name resolution between pods, and garbage collection by owner references."""

from __future__ import annotations

import json
import random

import pytest
from kubehelpers import Kube, python_pod, wait_for

pytestmark = pytest.mark.integration
ASCEND = "ascend.kubectl.kubernetes.io/ascend-910-configuration"


def ascend_pod(name: str, devices: int, node: str) -> dict:
    return python_pod(
        name,
        "import os, time\nd = os.environ['ZOO_ASCEND_DEVICE_DIR']\n"
        "print(os.environ.get('ASCEND_VISIBLE_DEVICES'), sorted(os.listdir(d)), flush=True)\ntime.sleep(3600)",
        nodeSelector={"accelerator": "huawei-Ascend910", "kubernetes.io/hostname": node},
        container={"resources": {"limits": {"huawei.com/Ascend910": str(devices)}}},
    )


def test_ascend_pods_get_distinct_devices_and_the_annotation_after_start(kube: Kube) -> None:
    kube.apply(ascend_pod("npu-a", 4, "ascend-node-2"), ascend_pod("npu-b", 2, "ascend-node-2"))
    seen = []
    for name in ("npu-a", "npu-b"):
        line = wait_for(
            f"{name} running", lambda n=name: kube.logs(n).strip() if kube.pod_phase(n) == "Running" else None
        )
        # Like MindCluster's plugin, the fake one annotates from a loop after the container has started.
        pod = wait_for(
            f"{name} annotated",
            lambda n=name: (p := kube.get("pod", n))["metadata"].get("annotations", {}).get(ASCEND) and p,
        )
        node = kube.get("node", pod["spec"]["nodeName"])
        ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        value = json.loads(pod["metadata"]["annotations"][ASCEND])
        assert value["pod_name"] == name and value["server_id"] == ip
        ids = [d["device_id"] for d in value["devices"]]
        visible, files = line.split(" ", 1)
        assert visible == ",".join(ids)
        # Only its own device files, plus the shared nodes every NPU container gets (devices.SHARED_DEVICE_NODES).
        shared = ["davinci_manager", "devmm_svm", "hisi_hdc"]
        assert files == str(sorted([f"davinci{i}" for i in ids] + shared))
        assert all(d["device_ip"].startswith("192.168.") for d in value["devices"])
        seen.append(set(ids))
    assert [len(s) for s in seen] == [4, 2] and not seen[0] & seen[1]


def test_pods_resolve_each_other_through_a_headless_service_and_talk_over_their_ips(kube: Kube) -> None:
    labels = {"app": "dns"}
    # Pods share the host's network namespace: a fixed port could be taken by a 0.0.0.0 listener elsewhere.
    port = random.randint(18000, 19999)
    server = python_pod(
        "srv",
        "import os, http.server\n"
        "s = http.server.HTTPServer((os.environ['POD_IP'], PORT), http.server.SimpleHTTPRequestHandler)\n"
        "s.serve_forever()".replace("PORT", str(port)),
        labels=labels,
        hostname="srv",
        subdomain="grp",
        container={
            "workingDir": "/etc/podinfo",
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "volumeMounts": [{"name": "info", "mountPath": "/etc/podinfo"}],
        },
        volumes=[
            {
                "name": "info",
                "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]},
            }
        ],
    )
    client = python_pod(
        "cli",
        "import socket, time, urllib.request\n"
        "for _ in range(100):\n"
        "    try:\n"
        "        ips = [socket.gethostbyname(n) for n in ('srv.grp', 'srv.grp.NS.svc.cluster.local', 'grp')]\n"
        "        body = urllib.request.urlopen('http://srv.grp:PORT/name', timeout=2).read().decode()\n"
        "        break\n"
        "    except OSError:\n"
        "        time.sleep(0.3)\n"
        "print(' '.join(ips), body, flush=True)\n".replace("NS", kube.ns).replace("PORT", str(port)),
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "grp"},
        "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": port}]},
    }
    kube.apply(service, server)
    wait_for("server running", lambda: kube.pod_phase("srv") == "Running")
    kube.apply(client)
    wait_for("client done", lambda: kube.pod_phase("cli") == "Succeeded", 60)
    srv_ip = kube.get("pod", "srv")["status"]["podIP"]
    assert kube.logs("cli").split() == [srv_ip, srv_ip, srv_ip, "srv"]


def test_garbage_collector_deletes_dependents_of_a_deleted_owner(kube: Kube) -> None:
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}, "data": {}})
    uid = kube.get("configmap", "owner")["metadata"]["uid"]
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
    owned = python_pod("owned", "import time; time.sleep(3600)")
    owned["metadata"]["ownerReferences"] = [ref]
    kube.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "child", "ownerReferences": [ref]}},
        owned,
    )
    wait_for("owned pod running", lambda: kube.pod_phase("owned") == "Running")
    kube.cluster.kubectl("delete", "configmap", "owner", "-n", kube.ns)
    wait_for("dependent config map collected", lambda: kube.get("configmap", "child") is None, 60)
    wait_for("dependent pod collected", lambda: kube.get("pod", "owned") is None, 60)


def test_a_volcano_mode_device_plugin_refuses_pods_volcano_did_not_place(kube: Kube) -> None:
    # ascend-volcano-1's plugin runs in Volcano mode (hack/cluster/nodes.yaml), like MindCluster's default
    # deployment. Both pods are bound directly (no Volcano here); only the one Volcano would have placed gets an NPU.
    def pod(name: str, scheduler: str) -> dict:
        body = ascend_pod(name, 1, "ascend-volcano-1")
        body["spec"].pop("nodeSelector")
        body["spec"].update(nodeName="ascend-volcano-1", schedulerName=scheduler)
        return body

    kube.apply(pod("npu-default", "default-scheduler"), pod("npu-volcano", "volcano"))
    wait_for("npu-volcano running", lambda: kube.pod_phase("npu-volcano") == "Running")
    refused = wait_for(
        "npu-default failed",
        lambda: (p := kube.get("pod", "npu-default"))["status"].get("phase") == "Failed" and p,
    )
    assert refused["status"]["reason"] == "UnexpectedAdmissionError"
    assert "not get valid pod" in refused["status"]["message"]
