"""The fake Ascend device plugin: allocates device ids per node and builds the pod annotation.

The annotation is what Huawei's device plugin writes and what the operator reads to fill the HCCL rank table.
"""

from __future__ import annotations

import json
from typing import Any

ASCEND_RESOURCE = "huawei.com/Ascend910"
ASCEND_ANNOTATION = "ascend.kubectl.kubernetes.io/ascend-910-configuration"


def requested_devices(pod: dict[str, Any], resource: str = ASCEND_RESOURCE) -> int:
    """How many devices the pod needs: max(sum over containers, max over init containers), as the scheduler counts."""

    def amount(container: dict[str, Any]) -> int:
        res = container.get("resources") or {}
        value = (res.get("limits") or {}).get(resource) or (res.get("requests") or {}).get(resource) or 0
        return int(value)

    spec = pod["spec"]
    main = sum(amount(c) for c in spec.get("containers", []))
    init = max((amount(c) for c in spec.get("initContainers") or []), default=0)
    return max(main, init)


class DeviceAllocator:
    """Device ids 0..count-1 of one node; remembers which pod holds which."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.held: dict[str, list[int]] = {}

    def allocate(self, pod_uid: str, n: int) -> list[int] | None:
        """Give the pod n free ids (lowest first), the same ids again if it has some, or None if too few are free."""
        if pod_uid in self.held:
            return self.held[pod_uid]
        used = {i for ids in self.held.values() for i in ids}
        free = [i for i in range(self.count) if i not in used]
        if len(free) < n:
            return None
        self.held[pod_uid] = free[:n]
        return self.held[pod_uid]

    def adopt(self, pod_uid: str, ids: list[int]) -> None:
        """Record ids a pod already holds (read back from its annotation after a kubelet restart)."""
        self.held[pod_uid] = list(ids)

    def release(self, pod_uid: str) -> None:
        """Free the pod's ids."""
        self.held.pop(pod_uid, None)


def device_ip(node_index: int, device_id: int) -> str:
    """The (never contacted) device IP of a device: 192.168.<node index>.<101 + id>."""
    return f"192.168.{node_index}.{101 + device_id}"


def annotation_value(pod_name: str, server_id: str, node_index: int, ids: list[int]) -> str:
    """The JSON annotation value for a pod holding device ids on a node."""
    devices = [{"device_id": str(i), "device_ip": device_ip(node_index, i)} for i in ids]
    return json.dumps({"pod_name": pod_name, "server_id": server_id, "devices": devices})


def ids_from_annotation(value: str | None) -> list[int]:
    """The device ids in an existing annotation ([] when absent or unreadable)."""
    if not value:
        return []
    try:
        return [int(d["device_id"]) for d in json.loads(value).get("devices", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
