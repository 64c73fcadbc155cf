"""The fake Ascend device plugin: allocates physical NPU ids per node and builds the pod annotation.

It imitates MindCluster's ascend-device-plugin where our pods depend on it (sources in each function):
- the container gets ASCEND_VISIBLE_DEVICES with its physical ids and sees only its own device files;
- the annotation `ascend.kubectl.kubernetes.io/ascend-910-configuration` arrives a few seconds after the
  container starts (the plugin writes it from a periodic loop), in one of two generations (<= v7 or >= v26);
- in Volcano mode (`-volcanoType=true`, MindCluster's default deployment) a pod Volcano did not place gets no NPU.
The workload's Ascend checks then run against this, under ZOO_ASCEND_SIMULATE=1 (set only here).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ASCEND_RESOURCE = "huawei.com/Ascend910"
ASCEND_ANNOTATION = "ascend.kubectl.kubernetes.io/ascend-910-configuration"
GENERATIONS = ("v7", "v26")
DEVICE_DIR = "/run/zoo-ascend/dev"
"""Where a container finds its fake NPU device files (davinci<N>); the real ones are /dev/davinci<N>."""
SIMULATE_ENV = {"ZOO_ASCEND_SIMULATE": "1", "ZOO_ASCEND_DEVICE_DIR": DEVICE_DIR}
VOLCANO = "volcano"


@dataclass(frozen=True)
class PluginConfig:
    """How one node's fake device plugin behaves (nodes.yaml `devicePlugin`, or the kubelet's environment)."""

    generation: str = "v7"
    volcano: bool = False
    annotate_delay: float = 3.0
    """Seconds after the container starts before the annotation appears (the real plugin's loop runs every ~5 s)."""
    simulate: bool = True
    """Whether the node's containers get the simulated NPU (SIMULATE_ENV). False: an Ascend node whose NPUs are
    absent, as a real node with a broken driver: everything else as above, and MindSpore meets the machine as is."""


def plugin_config(raw: dict[str, Any] | None, env: dict[str, str] | None = None) -> PluginConfig:
    """A node's plugin settings: nodes.yaml `devicePlugin: {generation, volcano, annotateDelaySeconds, simulate}`,
    where ZOO_ASCEND_PLUGIN_GENERATION / ZOO_ASCEND_PLUGIN_VOLCANO in the kubelet's environment win (tests set them)."""
    env = dict(os.environ) if env is None else env
    raw = raw or {}
    generation = env.get("ZOO_ASCEND_PLUGIN_GENERATION") or str(raw.get("generation", "v7"))
    if generation not in GENERATIONS:
        raise ValueError(
            f"devicePlugin.generation: must be one of {', '.join(GENERATIONS)}, got {generation!r}"
        )
    volcano_env = env.get("ZOO_ASCEND_PLUGIN_VOLCANO")
    volcano = volcano_env == "true" if volcano_env else bool(raw.get("volcano", False))
    delay = float(env.get("ZOO_ASCEND_ANNOTATE_DELAY") or raw.get("annotateDelaySeconds", 3.0))
    simulate = raw.get("simulate", True)
    if not isinstance(simulate, bool):
        raise TypeError(f"devicePlugin.simulate: must be true or false, got {simulate!r}")
    return PluginConfig(generation, volcano, delay, simulate)


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


def refusal(pod: dict[str, Any], plugin: PluginConfig) -> str | None:
    """Why the plugin refuses the pod, or None.

    In Volcano mode ascend-device-plugin hands devices only to pods Volcano placed (it looks the pod up by the
    device annotation Volcano's Ascend plugin writes; none found: "not get valid pod", pkg/server/plugin.go), so
    a pod bound by any other scheduler fails admission.
    """
    if plugin.volcano and pod["spec"].get("schedulerName") != VOLCANO:
        return (
            f"Allocate failed: not get valid pod (the Ascend device plugin runs in Volcano mode; pod "
            f"{pod['metadata']['name']} was scheduled by {pod['spec'].get('schedulerName') or 'default-scheduler'})"
        )
    return None


class DeviceAllocator:
    """Device ids 0..count-1 of one node; remembers which pod holds which."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.held: dict[str, list[int]] = {}
        self.unhealthy: frozenset[int] = frozenset()  # issue 23 (faults.py): never handed to a new pod

    def allocate(self, pod_uid: str, n: int) -> list[int] | None:
        """Give the pod n free ids (lowest first), the same ids again if it has some, or None if too few are free."""
        if pod_uid in self.held:
            return self.held[pod_uid]
        used = {i for ids in self.held.values() for i in ids} | self.unhealthy
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


def annotation_value(
    pod: dict[str, Any], node_ip: str, node_index: int, ids: list[int], generation: str = "v7"
) -> str:
    """The JSON annotation for a pod holding physical device ids on a node, as the plugin generation writes it.

    <= v7: server_id is the node IP. >= v26 (MindCluster commit 03770c70, pkg/device/ascendcommon.go
    getConfigAnno): server_id is the pod UID, host_ip/server_ip carry the node IP, plus rack_id and server_index.
    """
    devices = [
        {"device_id": str(i), "device_ip": device_ip(node_index, i), "super_device_id": str(i)} for i in ids
    ]
    meta = pod["metadata"]
    if generation == "v26":
        return json.dumps(
            {
                "pod_name": meta["name"],
                "server_id": meta["uid"],
                "host_ip": node_ip,
                "server_ip": node_ip,
                "rack_id": "-1",
                "server_index": str(node_index - 1),
                "super_pod_id": -1,
                "devices": devices,
            }
        )
    return json.dumps(
        {"pod_name": meta["name"], "server_id": node_ip, "super_pod_id": -1, "devices": devices}
    )


def ids_from_annotation(value: str | None) -> list[int]:
    """The device ids in an existing annotation ([] when absent or unreadable)."""
    if not value:
        return []
    try:
        return [int(d["device_id"]) for d in json.loads(value).get("devices", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


SHARED_DEVICE_NODES = ("davinci_manager", "devmm_svm", "hisi_hdc")
"""The device nodes every NPU container gets besides its davinci<N>: Ascend Docker Runtime's and the DRA driver's
CDI spec alike (component/ascend-common/cdi/devnode.go, GenerateSharedNodes, on 910/910B/A3)."""


def write_device_files(directory: Path, ids: list[int]) -> Path:
    """The container's device directory: only davinci<N> for its own physical ids, under the same number as on the
    host, plus the shared nodes (Ascend Docker Runtime mounts only the allocated /dev/davinciN; the DRA driver's
    CDI spec maps host /dev/davinci<id> to container /dev/davinci<id>, cdi/devnode.go GeneratePerDeviceNodes)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("davinci*"):
        stale.unlink()
    for i in ids:
        (directory / f"davinci{i}").write_text(f"fake Ascend NPU {i}\n")
    for name in SHARED_DEVICE_NODES:
        (directory / name).write_text("fake Ascend shared device node\n")
    return directory


DRIVER_PATH = "/usr/local/Ascend/driver"
NPU_SMI_PATH = "/usr/local/bin/npu-smi"


def node_files(root: Path) -> dict[str, Path]:
    """An Ascend node's driver directory and npu-smi, as hostPaths resolve on it (pods mount them read-only, as
    mindxdl-deploy's samples do); a CPU node has neither, so such a pod fails there as on a real one."""
    driver = root / DRIVER_PATH.lstrip("/")
    driver.mkdir(parents=True, exist_ok=True)
    (driver / "version.info").write_text("Version=fake (zoo-operator local cluster)\n")
    smi = root / NPU_SMI_PATH.lstrip("/")
    smi.parent.mkdir(parents=True, exist_ok=True)
    if not smi.exists():
        smi.write_text("#!/bin/sh\necho 'npu-smi: fake Ascend node of the zoo-operator local cluster'\n")
        smi.chmod(0o755)
    return {DRIVER_PATH: driver, NPU_SMI_PATH: smi}


def container_env(ids: list[int], simulate: bool = True, dra: bool = False) -> dict[str, str]:
    """What the plugin and the runtime put into a container holding `ids` (pkg/common/common.go,
    SetAscendRuntimeEnv), plus the simulation switch only the local cluster sets (on nodes that simulate).

    `dra`: the NPUs came through MindCluster's DRA driver, whose CDI spec sets no ASCEND_VISIBLE_DEVICES: its only
    env edit is LD_LIBRARY_PATH, and only for driver library directories that exist on the host
    (component/ascend-common/cdi/spec.go, BuildSpec/collectAscendLibPaths; the fake driver has none). The
    container learns its NPUs from the /dev/davinci<N> nodes alone (write_device_files)."""
    if not ids:
        return {}
    visible = {} if dra else {"ASCEND_VISIBLE_DEVICES": ",".join(str(i) for i in ids)}
    return {**visible, **(SIMULATE_ENV if simulate else {})}


# ---- NPUs through dynamic resource allocation (issue 21) ----
# A node with `dra: true` in nodes.yaml has no device plugin: it advertises no huawei.com/Ascend910 and its NPUs are
# published as MindCluster's Ascend DRA driver publishes them (Ascend/mind-cluster v26.2,
# docs/zh/scheduling/06_api/17_ascend_dynamic_resource_allocation_.md "ResourceSlice上报格式", and
# component/ascend-dynamic-resource-allocation/build/ascend-dra-driver.yaml): driver npu.huawei.com, one pool per
# node named after it, one slice holding every NPU, devices `npu-<physical id>` with attributes type "npu",
# physicId (int) and chipName, and the DeviceClass npu.huawei.com selecting `device.driver == 'npu.huawei.com'`.
# The real kube-scheduler allocates from these slices; the kubelet reads the pod's allocated devices back.
DRA_DRIVER = "npu.huawei.com"
DRA_DEVICE_CLASS = "npu.huawei.com"
DRA_DEVICE_PREFIX = "npu-"
RESOURCE_API = "/apis/resource.k8s.io/v1"


def device_class() -> dict[str, Any]:
    """The DeviceClass the driver's deployment installs (ascend-dra-driver.yaml)."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": DRA_DEVICE_CLASS},
        "spec": {"selectors": [{"cel": {"expression": f"device.driver == '{DRA_DRIVER}'"}}]},
    }


def resource_slice(node: str, count: int, chip_name: str) -> dict[str, Any]:
    """The node's one ResourceSlice: every NPU 0..count-1 as `npu-<id>` in the pool named after the node."""
    devices = [
        {
            "name": f"{DRA_DEVICE_PREFIX}{i}",
            "attributes": {
                "type": {"string": "npu"},
                "physicId": {"int": i},
                "chipName": {"string": chip_name},
            },
        }
        for i in range(count)
    ]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{DRA_DRIVER}-{node}"},
        "spec": {
            "nodeName": node,
            "driver": DRA_DRIVER,
            "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
            "devices": devices,
        },
    }


def claim_names(pod: dict[str, Any]) -> list[str] | None:
    """The ResourceClaims of the pod's spec.resourceClaims, by name, as the resourceclaim controller reports them
    in status.resourceClaimStatuses (templates) or as the spec names them (resourceClaimName); None while one is
    not reported yet; [] for a pod that claims nothing."""
    wanted = pod["spec"].get("resourceClaims") or []
    reported = {
        s.get("name"): s.get("resourceClaimName")
        for s in (pod.get("status") or {}).get("resourceClaimStatuses") or []
    }
    out = []
    for claim in wanted:
        name = claim.get("resourceClaimName") or reported.get(claim.get("name"))
        if not name:
            return None
        out.append(str(name))
    return out


def allocated_ids(claim: dict[str, Any], node: str) -> list[int] | None:
    """The physical NPU ids the scheduler allocated in a ResourceClaim on `node` (results of driver npu.huawei.com
    in the node's pool, device `npu-<id>`), or None while it is not allocated."""
    allocation = (claim.get("status") or {}).get("allocation")
    if not allocation:
        return None
    ids = []
    for result in (allocation.get("devices") or {}).get("results") or []:
        if result.get("driver") != DRA_DRIVER:
            continue
        if result.get("pool") != node:
            raise ValueError(
                f"claim {claim['metadata']['name']}: device {result.get('device')} is in pool "
                f"{result.get('pool')}, not on node {node}"
            )
        device = str(result.get("device", ""))
        if not device.startswith(DRA_DEVICE_PREFIX) or not device[len(DRA_DEVICE_PREFIX) :].isdigit():
            raise ValueError(f"claim {claim['metadata']['name']}: {device!r} is not an npu-<id> device")
        ids.append(int(device[len(DRA_DEVICE_PREFIX) :]))
    return sorted(ids)
