"""Node objects of the local kubelet: registration, status (Ready, capacity, addresses) and lease renewal."""

from __future__ import annotations

import datetime as dt
import platform
from dataclasses import dataclass, field
from typing import Any

import yaml

from zoocluster.kubeapi import ApiError, Client

KUBELET_VERSION = "v1.36.3"
LEASE_SECONDS = 40


@dataclass(frozen=True)
class NodeSpec:
    """A node as configured in nodes.yaml."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    capacity: dict[str, str] = field(default_factory=dict)
    device_plugin: dict[str, Any] = field(default_factory=dict)
    """Ascend nodes: the fake device plugin's settings (devices.plugin_config)."""
    taints: list[dict[str, str]] = field(default_factory=list)
    """core/v1 Taints of the node (keeps ordinary pods off a special node)."""
    config_map_sync: dict[str, Any] = field(default_factory=dict)
    """When updated ConfigMaps/Secrets reach the node's pods (propagation.parse; empty: that node kind's default)."""
    dra: bool = False
    """Ascend nodes: NPUs through DRA (MindCluster's Ascend DRA driver) instead of the device plugin: the node
    advertises no huawei.com/Ascend910 (its capacity entry only says how many NPUs the driver publishes)."""


def parse_nodes(doc: dict[str, Any]) -> list[NodeSpec]:
    """Read the nodes config ({"nodes": [{name, labels, capacity}]}), checking names are unique."""
    items = doc.get("nodes")
    if not isinstance(items, list) or not items:
        raise ValueError("nodes config: 'nodes' must be a non-empty list of {name, labels, capacity}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("name"):
            raise ValueError(f"nodes config: nodes[{i}].name is required")
        out.append(
            NodeSpec(
                name=str(item["name"]),
                labels={str(k): str(v) for k, v in (item.get("labels") or {}).items()},
                capacity={str(k): str(v) for k, v in (item.get("capacity") or {}).items()},
                device_plugin=dict(item.get("devicePlugin") or {}),
                taints=[dict(t) for t in item.get("taints") or []],
                config_map_sync=dict(item.get("configMapSync") or {}),
                dra=_flag(item.get("dra", False), f"nodes[{i}].dra"),
            )
        )
    names = [n.name for n in out]
    if len(set(names)) != len(names):
        raise ValueError(f"nodes config: node names must be unique, got {names}")
    return out


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"nodes config: {where} must be true or false, got {value!r}")
    return value


NPU_RESOURCE = "huawei.com/Ascend910"


def advertised(spec: NodeSpec) -> dict[str, str]:
    """The node's capacity as its status reports it: a DRA node's NPUs are in its ResourceSlice, not here (MindCluster:
    the DRA driver and the device plugin are two mutually exclusive ways in)."""
    return {k: v for k, v in spec.capacity.items() if not (spec.dra and k == NPU_RESOURCE)}


def load_nodes(text: str) -> list[NodeSpec]:
    """Parse the nodes config file's text."""
    return parse_nodes(yaml.safe_load(text) or {})


def node_ip(subnet: str, index: int) -> str:
    """The InternalIP of the index-th node (1-based): <subnet>.<index>, e.g. 127.0.2.1."""
    return f"{subnet}.{index}"


def micro_time() -> str:
    """Now as a Kubernetes MicroTime."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_object(spec: NodeSpec) -> dict[str, Any]:
    """The Node to create (status is written separately: create ignores it)."""
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "zoo-local",
        **spec.labels,
    }
    node_spec = {"taints": spec.taints} if spec.taints else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": node_spec,
    }


def node_status(spec: NodeSpec, ip: str, port: int, now: str, unhealthy: int = 0) -> dict[str, Any]:
    """The node's status: Ready, capacity = allocatable, addresses, kubelet endpoint, versions. `unhealthy` NPUs
    (faults.py) are left out of allocatable, as the device manager counts only the devices the plugin's
    ListAndWatch reports Healthy; capacity keeps them."""

    def cond(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": "True" if ok else "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    allocatable = advertised(spec)
    if unhealthy and NPU_RESOURCE in allocatable:
        allocatable[NPU_RESOURCE] = str(max(0, int(allocatable[NPU_RESOURCE]) - unhealthy))
    return {
        "capacity": advertised(spec),
        "allocatable": allocatable,
        "conditions": [
            cond(
                "MemoryPressure",
                False,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            cond("DiskPressure", False, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", False, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", True, "KubeletReady", "zoo local kubelet is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": spec.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": "zoo-operator local cluster",
            "containerRuntimeVersion": "zoo-process://0.1.0",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def register(client: Client, spec: NodeSpec, ip: str, port: int) -> None:
    """Create the Node (or take over an existing one) and write its status."""
    try:
        client.create("/api/v1/nodes", node_object(spec))
    except ApiError as exc:
        if exc.status != 409:
            raise
        client.strategic_patch(f"/api/v1/nodes/{spec.name}", {"metadata": node_object(spec)["metadata"]})
    heartbeat(client, spec, ip, port)


def heartbeat(client: Client, spec: NodeSpec, ip: str, port: int, unhealthy: int = 0) -> None:
    """Refresh the node's status and renew its lease in kube-node-lease."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = node_status(spec, ip, port, now, unhealthy)
    client.strategic_patch(f"/api/v1/nodes/{spec.name}/status", {"status": status})
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{spec.name}"
    body = {
        "spec": {
            "holderIdentity": spec.name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": micro_time(),
        }
    }
    try:
        client.merge_patch(lease_path, body)
    except ApiError as exc:
        if exc.status != 404:
            raise
        client.create(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": spec.name},
                **body,
            },
        )


@dataclass
class IpPool:
    """Pod IPs <prefix>.<x>.<y> (x 0..254, y 1..254), one per pod until the pod is gone (x 255 is reserved)."""

    prefix: str
    held: dict[str, str] = field(default_factory=dict)
    _next: int = 0

    def allocate(self, uid: str) -> str:
        """The pod's IP (the same one on repeated calls)."""
        if uid in self.held:
            return self.held[uid]
        used = set(self.held.values())
        for _ in range(255 * 254):
            n, self._next = self._next, (self._next + 1) % (255 * 254)
            ip = f"{self.prefix}.{n // 254}.{n % 254 + 1}"
            if ip not in used:
                self.held[uid] = ip
                return ip
        raise RuntimeError("pod IP pool exhausted")

    def release(self, uid: str) -> None:
        """Return the pod's IP to the pool."""
        self.held.pop(uid, None)
