"""What a real Ascend node needs in a pod, per chip generation: pure data and builders (no API calls).

Sources (docs in /work/shared/ASCEND.md): the node labels Volcano's Ascend plugin dispatches on
(ascend-for-volcano `internal/npu/factory.go`; MindCluster's node-label guide: `module` for Atlas 800 9000 (910),
`module-910b-8` for Atlas 800T A2 (910B), `module-a3-16-super-pod` for Atlas 900 A3 SuperPoD), the rank table
version HCCL accepts per chip (1.0 for 910 and 910B, 1.2 for A3 super pods), and the mounts of mindxdl-deploy's
`yaml/910*/` samples: the driver read-only from the host, npu-smi, and a memory-backed /dev/shm.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from zoo_operator import conditions as c
from zoo_operator import schema

Obj = dict[str, Any]

ACCELERATOR_TYPE_LABEL = "accelerator-type"
HOST_ARCH_LABEL = "host-arch"
HOST_ARCHES = ("huawei-arm", "huawei-x86")
DRIVER_PATH = c.ASCEND_DRIVER_DIR
NPU_SMI_PATH = c.NPU_SMI_FILE
HCCL_TIMEOUT_ENV = "HCCL_CONNECT_TIMEOUT"
HCCL_CONNECT_TIMEOUT_SECONDS = 600
"""HCCL_CONNECT_TIMEOUT (s): ranks see the completed rank table up to 60-90 s apart (ConfigMap volume updates
travel with the kubelet's sync period), so HCCL's default of 120 s leaves too little margin; 600 matches
zoo-launch's rank-table wait."""


@dataclasses.dataclass(frozen=True)
class Chip:
    """One Ascend chip generation: what its nodes are labelled and which rank table HCCL accepts on it."""

    name: str
    accelerator_type: str
    rank_table_version: str
    image_suffix: str
    description: str


CHIPS: dict[str, Chip] = {
    "910": Chip("910", "module", "1.0", "910", "Ascend 910 (910A), Atlas 800 9000, 8 NPUs per server"),
    "910B": Chip("910B", "module-910b-8", "1.0", "910b", "Ascend 910B, Atlas 800T A2, 8 NPUs per server"),
    "A3": Chip(
        "A3", "module-a3-16-super-pod", "1.2", "a3", "Ascend 910C, Atlas 900 A3 SuperPoD, rank table 1.2"
    ),
}
CHIP_NAMES = list(CHIPS)
assert CHIP_NAMES == schema.ASCEND_CHIPS, "one list of chips: schema.ASCEND_CHIPS"


@dataclasses.dataclass(frozen=True, kw_only=True)
class AscendPod:
    """The Ascend parts of a worker pod, resolved from the job and the operator settings."""

    chip: str
    accelerator_type: str
    host_arch: str
    driver_mounts: bool
    shm_size: str
    dra_device_class: str = ""
    """The DeviceClass of the job's ResourceClaimTemplate (NPUs through DRA); empty = the extended resource."""


def node_selector(pod: AscendPod) -> dict[str, str]:
    """accelerator-type and host-arch: Volcano's Ascend plugin picks its handler from them (without them a 910B
    job is handled as a 910A module); empty values are left out."""
    out = {ACCELERATOR_TYPE_LABEL: pod.accelerator_type, HOST_ARCH_LABEL: pod.host_arch}
    return {k: v for k, v in out.items() if v}


def volumes(pod: AscendPod) -> tuple[list[Obj], list[Obj]]:
    """(volumes, volumeMounts): the host's driver (read-only) and npu-smi when asked for, and /dev/shm in memory
    (HCCL and the data pipeline need far more than the container runtime's 64 MiB default)."""
    shm: Obj = {"medium": "Memory", **({"sizeLimit": pod.shm_size} if pod.shm_size else {})}
    vols: list[Obj] = [{"name": "zoo-dshm", "emptyDir": shm}]
    mounts: list[Obj] = [{"name": "zoo-dshm", "mountPath": "/dev/shm"}]
    if pod.driver_mounts:
        vols += [
            {"name": "zoo-ascend-driver", "hostPath": {"path": DRIVER_PATH, "type": "Directory"}},
            {"name": "zoo-npu-smi", "hostPath": {"path": NPU_SMI_PATH, "type": "File"}},
        ]
        mounts += [
            {"name": "zoo-ascend-driver", "mountPath": DRIVER_PATH, "readOnly": True},
            {"name": "zoo-npu-smi", "mountPath": NPU_SMI_PATH, "readOnly": True},
        ]
    return vols, mounts


def env() -> list[Obj]:
    """HCCL settings every rank gets (before the job's own podTemplate.env, which may override them)."""
    return [{"name": HCCL_TIMEOUT_ENV, "value": str(HCCL_CONNECT_TIMEOUT_SECONDS)}]


def group_of(index: int, per_node: int) -> int:
    """The server group of worker `index`: workers i*perNode .. (i+1)*perNode-1 share one node."""
    return index // per_node


def placement(labels: dict[str, str], group_label: str, group: int) -> Obj:
    """Affinity that puts one server group on one node and different groups on different nodes.

    `labels` select the job's worker pods. Required pod affinity on the hostname to the pods of the same group
    (the group's first pod matches only itself, which Kubernetes allows), and required anti-affinity to the pods
    of every other group; MindCluster's samples use the same anti-affinity between the pods of one job.
    """
    same = {"matchLabels": {**labels, group_label: str(group)}}
    other = {
        "matchLabels": dict(labels),
        "matchExpressions": [
            {"key": group_label, "operator": "Exists"},
            {"key": group_label, "operator": "NotIn", "values": [str(group)]},
        ],
    }
    host = "kubernetes.io/hostname"
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": same, "topologyKey": host}]
        },
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": other, "topologyKey": host}]
        },
    }


# NPUs through dynamic resource allocation (issue 21). MindCluster's Ascend DRA driver (v26.2, the Ascend/mind-cluster
# docs `docs/zh/scheduling/06_api/17_ascend_dynamic_resource_allocation_.md` and the ascend-dra image README)
# publishes one ResourceSlice per node (driver and DeviceClass `npu.huawei.com`, pool = node name, devices
# `npu-<physical id>` with attributes type "npu", physicId (int) and chipName), and its CDI spec
# (component/ascend-common/cdi/spec.go) mounts /dev/davinci<id> of the allocated devices into the container.
DRA_DRIVER = "npu.huawei.com"
DRA_DEVICE_CLASS = "npu.huawei.com"
DRA_DEVICE_PREFIX = "npu-"
CLAIM_NAME = "npu"
"""The pod's spec.resourceClaims entry and its container's resources.claims entry."""


def claim_template(name: str, meta: Obj, device_class: str, count: int) -> Obj:
    """The job's ResourceClaimTemplate (resource.k8s.io/v1): one request of exactly `count` devices of the class;
    the resourceclaim controller makes one ResourceClaim per pod from it (so each pod gets its own NPUs)."""
    # allocationMode written out as the apiserver defaults it, so the stored object reads as rendered.
    exactly = {"deviceClassName": device_class, "allocationMode": "ExactCount", "count": count}
    request = {"name": CLAIM_NAME, "exactly": exactly}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {**meta, "name": name},
        "spec": {"spec": {"devices": {"requests": [request]}}},
    }


def pod_claims(template: str) -> tuple[list[Obj], list[Obj]]:
    """(pod spec.resourceClaims, container resources.claims) referencing the job's claim template."""
    return [{"name": CLAIM_NAME, "resourceClaimTemplateName": template}], [{"name": CLAIM_NAME}]
