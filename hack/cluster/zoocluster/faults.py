"""Injected hardware faults of the local cluster (issue 23): NPUs the fake device plugin reports unhealthy, and
nodes whose kubelet is lost.

`zoo-cluster npu-fault NODE DEVICE [--heal]` and `zoo-cluster node-down|node-up NODE` write the wanted state into
one JSON file in the kubelet's state directory; the running kubelet reads it every loop (about a second) and acts:

- an unhealthy NPU is reported as MindCluster's ascend-device-plugin reports it (`device_info_config_map`): the
  ConfigMap `mindx-dl-deviceinfo-<node>` in kube-system, and the kubelet's ListAndWatch stream marks the device
  Health "Unhealthy", which lowers the node's allocatable huawei.com/Ascend910 (Kubernetes' device manager counts
  only healthy devices: pkg/kubelet/cm/devicemanager/manager.go GetCapacity) and keeps it from new pods. The pod
  holding it keeps running, as on a real node (nothing kills it but the job's controller).
- a lost node stops renewing its Lease and posting NodeStatus, and its pods' processes die without a word to the
  apiserver: the real node-lifecycle controller marks the node Unknown after `--node-monitor-grace-period`
  (controlplane.py) and its pods Ready=False; the pods stay "Running" until someone deletes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from zoocluster import devices

FILE_NAME = "faults.json"
# ascend-device-plugin (Ascend/mind-cluster component/ascend-device-plugin): pkg/common/constants.go
# DeviceInfoCMNameSpace/DeviceInfoCMNamePrefix/DeviceInfoCMDataKey and HuaweiUnHealthAscend910 /
# HuaweiNetworkUnHealthAscend910; pkg/kubeclient/client_server.go WriteDeviceInfoDataIntoCM writes
# {"DeviceInfo": {"DeviceList": {...}, "UpdateTime": <unix s>}, "CheckCode": sha256(DeviceInfo), "SuperPodID",
# "ServerIndex"} under DeviceInfoCfg, next to ManuallySeparateNPU. The lists are comma-joined device names
# "Ascend910-<physical id>"; the resource key lists the healthy devices (MindCluster docs, "ManuallySeparateNPU"
# example: "huawei.com/Ascend910":"Ascend910-1,...,Ascend910-7", "huawei.com/Ascend910-Unhealthy":"").
DEVICE_INFO_NAMESPACE = "kube-system"
DEVICE_INFO_PREFIX = "mindx-dl-deviceinfo-"
DEVICE_INFO_KEY = "DeviceInfoCfg"
MANUALLY_SEPARATE_KEY = "ManuallySeparateNPU"
UNHEALTHY_KEY = devices.ASCEND_RESOURCE + "-Unhealthy"
NETWORK_UNHEALTHY_KEY = devices.ASCEND_RESOURCE + "-NetworkUnhealthy"
FAULT_KEY = devices.ASCEND_RESOURCE + "-Fault"
DEVICE_NAME = "Ascend910-{}"


@dataclasses.dataclass(frozen=True)
class Faults:
    """The injected faults: node -> unhealthy physical NPU ids, and the nodes that are down."""

    unhealthy: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    down: frozenset[str] = frozenset()

    def to_json(self) -> str:
        """The file's text."""
        return json.dumps(
            {
                "unhealthy": {k: list(v) for k, v in sorted(self.unhealthy.items()) if v},
                "down": sorted(self.down),
            }
        )


def parse(text: str) -> Faults:
    """Faults from the file's text; a missing or empty file is no fault."""
    if not text.strip():
        return Faults()
    raw = json.loads(text)
    unhealthy = {str(k): tuple(sorted({int(i) for i in v})) for k, v in (raw.get("unhealthy") or {}).items()}
    return Faults({k: v for k, v in unhealthy.items() if v}, frozenset(str(n) for n in raw.get("down") or []))


def path_in(kubelet_dir: Path) -> Path:
    """Where the faults file of a cluster lies (the kubelet's state directory)."""
    return kubelet_dir / FILE_NAME


def load(path: Path) -> Faults:
    """The faults as written now."""
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        return Faults()


def save(path: Path, faults: Faults) -> None:
    """Write atomically (the kubelet may read at any moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(faults.to_json())
    tmp.replace(path)


def with_npu(faults: Faults, node: str, device: int, healthy: bool) -> Faults:
    """The faults with one NPU marked unhealthy (or healed)."""
    ids = set(faults.unhealthy.get(node, ()))
    if healthy:
        ids.discard(device)
    else:
        ids.add(device)
    return dataclasses.replace(faults, unhealthy={**faults.unhealthy, node: tuple(sorted(ids))})


def with_node(faults: Faults, node: str, down: bool) -> Faults:
    """The faults with one node lost (or back)."""
    return dataclasses.replace(faults, down=faults.down | {node} if down else faults.down - {node})


def device_info_config_map(
    node: str, count: int, unhealthy: tuple[int, ...], now: float | None = None
) -> dict[str, Any]:
    """The ConfigMap mindx-dl-deviceinfo-<node> as the device plugin writes it for a node of `count` NPUs."""
    names = [DEVICE_NAME.format(i) for i in range(count)]
    bad = {DEVICE_NAME.format(i) for i in unhealthy}
    info = {
        "DeviceList": {
            devices.ASCEND_RESOURCE: ",".join(n for n in names if n not in bad),
            FAULT_KEY: "[]",
            NETWORK_UNHEALTHY_KEY: "",
            UNHEALTHY_KEY: ",".join(n for n in names if n in bad),
        },
        "UpdateTime": int(time.time() if now is None else now),
    }
    # The plugin's MakeDataHash: sha256 over the JSON of DeviceInfo (Go's encoding/json sorts map keys).
    check = hashlib.sha256(json.dumps(info, separators=(",", ":"), sort_keys=True).encode()).hexdigest()
    data = {"DeviceInfo": info, "CheckCode": check, "SuperPodID": -1, "ServerIndex": -1}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": DEVICE_INFO_PREFIX + node, "namespace": DEVICE_INFO_NAMESPACE},
        "data": {DEVICE_INFO_KEY: json.dumps(data, separators=(",", ":")), MANUALLY_SEPARATE_KEY: ""},
    }


def check_target(node: str, device: int | None, known: dict[str, int]) -> None:
    """Refuse a fault on a node or NPU the cluster does not have (`known`: node -> its NPU count)."""
    if node not in known:
        raise ValueError(
            f"node {node!r}: not a node of this cluster (nodes.yaml: {', '.join(sorted(known))})"
        )
    if device is not None and not 0 <= device < known[node]:
        have = f"NPUs 0..{known[node] - 1}" if known[node] else "no NPUs"
        raise ValueError(f"device {device}: node {node} has {have}")
