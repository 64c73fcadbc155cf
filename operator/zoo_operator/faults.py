"""Fault detection beyond exit codes (issue 23): a rank on a node that is not Ready, or on an NPU the Ascend
device plugin reports unhealthy, is a fault even while its pod still says Running.

Pure: observe.py reads the nodes of the job's pods and, for Ascend jobs, their device-info ConfigMaps, and folds
what it read into the pod views (`fold`); `decide` turns faulty ranks into a restart away from the fault;
`record`/`avoided_nodes` keep the faults in status.faults, from which the replacement pods get a node affinity
keeping them off a faulty node (`avoid_nodes`).

What is read, and from where:
- Node Ready condition: Kubernetes' node-lifecycle controller sets it Unknown when the kubelet stops renewing its
  Lease for --node-monitor-grace-period (50 s by default); the pods stay Running until the taint manager evicts
  them (tolerationSeconds 300 s by default), far too late for training.
- MindCluster's ascend-device-plugin writes ConfigMap `mindx-dl-deviceinfo-<node>` in kube-system, key
  `DeviceInfoCfg`: {"DeviceInfo": {"DeviceList": {"huawei.com/Ascend910-Unhealthy": "Ascend910-3,...",
  "huawei.com/Ascend910-NetworkUnhealthy": "...", ...}, "UpdateTime"}, "CheckCode"} (Ascend/mind-cluster
  component/ascend-device-plugin pkg/kubeclient/client_server.go WriteDeviceInfoDataIntoCM, pkg/common/constants.go
  HuaweiUnHealthAscend910, HuaweiNetworkUnHealthAscend910). The device names carry the physical id, the same id as
  the pod's device annotation's device_id.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from zoo_operator import conditions as c
from zoo_operator.podview import PodView, format_time

DEVICE_INFO_NAMESPACE = "kube-system"
DEVICE_INFO_PREFIX = "mindx-dl-deviceinfo-"
DEVICE_INFO_KEY = "DeviceInfoCfg"
# The device-plugin's resource suffixes: chip unhealthy, and its RoCE link down (HCCL across servers fails).
UNHEALTHY_SUFFIX = "-Unhealthy"
NETWORK_UNHEALTHY_SUFFIX = "-NetworkUnhealthy"
# status.faults keeps the newest this many (bounded status, limits.py).
MAX_FAULTS = 20
MESSAGE_CHARS = 300  # a node condition's message is the kubelet's text, of any length
HOSTNAME_LABEL = "kubernetes.io/hostname"


def device_info_name(node: str) -> str:
    """The device-info ConfigMap of a node."""
    return DEVICE_INFO_PREFIX + node


def device_info_node(config_map: str) -> str | None:
    """The node whose device-info ConfigMap is named `config_map` (device_info_name's inverse); None for any
    other ConfigMap."""
    return config_map[len(DEVICE_INFO_PREFIX) :] if config_map.startswith(DEVICE_INFO_PREFIX) else None


def _ids(names: Any, chip: str) -> set[int]:
    out: set[int] = set()
    if not isinstance(names, str):
        return out
    for name in names.split(","):
        prefix, _, number = name.strip().rpartition("-")
        if prefix == chip and number.isdigit():
            out.add(int(number))
    return out


def unhealthy_npus(data: Mapping[str, Any] | None, resource: str) -> dict[int, str]:
    """Physical NPU id -> why, from a device-info ConfigMap's data (empty when absent or unreadable: a plugin
    that reports nothing reports no fault). `resource` is the job's device resource, e.g. huawei.com/Ascend910."""
    if not data:
        return {}
    try:
        info = json.loads(str(data.get(DEVICE_INFO_KEY) or "{}"))
        devices = info.get("DeviceInfo", {}).get("DeviceList", {})
    except (ValueError, AttributeError):
        return {}
    if not isinstance(devices, dict):
        return {}
    chip = resource.rpartition("/")[2]
    out = {
        i: c.REASON_NPU_NETWORK_UNHEALTHY
        for i in _ids(devices.get(resource + NETWORK_UNHEALTHY_SUFFIX), chip)
    }
    out.update({i: c.REASON_NPU_UNHEALTHY for i in _ids(devices.get(resource + UNHEALTHY_SUFFIX), chip)})
    return out


def node_ready(node: Mapping[str, Any] | None) -> tuple[bool | None, str]:
    """(Ready, why not) of a Node object: None when unknown (read as {}: not allowed, or no Ready condition yet);
    a node that is gone (None) is not Ready."""
    if node is None:
        return False, "node is gone"
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return True, ""
            why = cond.get("reason") or "NotReady"
            return False, f"Ready={cond.get('status')} ({why}): {cond.get('message') or ''}".rstrip(": ")
    return None, ""


def pod_npus(annotation: str | None) -> tuple[int, ...]:
    """Physical NPU ids in a pod's device-plugin annotation (both generations carry devices[].device_id)."""
    if not annotation:
        return ()
    try:
        return tuple(sorted(int(d["device_id"]) for d in json.loads(annotation).get("devices") or []))
    except (ValueError, KeyError, TypeError, AttributeError):
        return ()


@dataclasses.dataclass(frozen=True)
class Fault:
    """One rank's fault: the pod, its node, the NPU (None for a node fault), the reason and what was seen."""

    pod: str
    node: str
    reason: str
    message: str
    device: int | None = None

    def record(self, attempt: int, now: float) -> dict[str, Any]:
        """The status.faults entry."""
        out: dict[str, Any] = {
            "time": format_time(now),
            "reason": self.reason,
            "node": self.node,
            "pod": self.pod,
            "restart": attempt,
            "message": self.message[:MESSAGE_CHARS],
        }
        if self.device is not None:
            out["device"] = self.device
        return out


def fold(
    pods: Sequence[PodView],
    ready: Mapping[str, tuple[bool | None, str]],
    unhealthy: Mapping[str, Mapping[int, str]],
) -> list[PodView]:
    """The pods with what was read of their nodes: node_ready/node_problem and the faulty NPUs they hold."""
    out = []
    for pod in pods:
        if pod.node is None:
            out.append(pod)
            continue
        ok, why = ready.get(pod.node, (None, ""))
        bad = unhealthy.get(pod.node) or {}
        held = tuple((i, bad[i]) for i in pod_npus(pod.device_annotation) if i in bad)
        out.append(dataclasses.replace(pod, node_ready=ok, node_problem=why, faulty_npus=held))
    return out


def detect(pods: Sequence[PodView], attempt: int) -> list[Fault]:
    """The faults of the gang's ranks: pods of `attempt`, scheduled, not deleted, not succeeded. A rank that
    failed on a faulty node or NPU counts as the fault's (its crash is most likely the fault's effect)."""
    out = []
    for pod in pods:
        if pod.deleting or pod.node is None or pod.attempt < attempt or (pod.terminated and not pod.failed):
            continue
        if pod.node_ready is False:
            out.append(
                Fault(pod.name, pod.node, c.REASON_NODE_NOT_READY, f"node {pod.node}: {pod.node_problem}")
            )
            continue
        for device, reason in pod.faulty_npus:
            what = "unhealthy" if reason == c.REASON_NPU_UNHEALTHY else "network unhealthy"
            message = f"NPU {device} of node {pod.node} reported {what} by the Ascend device plugin"
            out.append(Fault(pod.name, pod.node, reason, message, device))
    return out


def to_force(pods: Sequence[PodView]) -> tuple[str, ...]:
    """Pods to delete without a grace period: those on a node that is not Ready. Its kubelet cannot confirm a
    graceful delete, so the pod would stay Terminating and hold its name (the replacement has the same name);
    the rank table of the new attempt keeps a process still alive there out of the new gang."""
    return tuple(p.name for p in pods if p.node is not None and p.node_ready is False and not p.terminated)


def summary(found: Sequence[Fault]) -> str:
    """One line naming every fault (status.message)."""
    parts = [f"pod {f.pod}: {f.message}" for f in found[:4]]
    more = f" (and {len(found) - 4} more)" if len(found) > 4 else ""
    return "; ".join(parts) + more


def record(
    previous: Sequence[Mapping[str, Any]] | None, found: Sequence[Fault], attempt: int, now: float
) -> list[dict[str, Any]]:
    """status.faults after recording `found` (the newest MAX_FAULTS): one entry per lost node (its first rank's
    pod; eight ranks of a server would fill the list), one per faulty NPU."""
    kept = [dict(x) for x in previous or [] if isinstance(x, Mapping)]
    seen: set[tuple[str, str, int | None]] = set()
    new = []
    for f in found:
        key = (f.node, f.reason, f.device)
        if key not in seen:
            seen.add(key)
            new.append(f.record(attempt, now))
    return (kept + new)[-MAX_FAULTS:]


def avoided_nodes(faults: Sequence[Mapping[str, Any]] | None) -> tuple[str, ...]:
    """Nodes the job's new pods keep off: those that had a node fault. An NPU fault excludes only the NPU: the
    device plugin stops offering it (allocatable drops), the rest of the node stays usable."""
    nodes = {
        str(x.get("node"))
        for x in faults or []
        if isinstance(x, Mapping) and x.get("reason") == c.REASON_NODE_NOT_READY and x.get("node")
    }
    return tuple(sorted(nodes))


def avoid_nodes(pod: dict[str, Any], nodes: Sequence[str]) -> dict[str, Any]:
    """The pod with a required node affinity `kubernetes.io/hostname NotIn nodes` added to every term (terms are
    ORed, so each must exclude them)."""
    if not nodes:
        return pod
    spec = dict(pod["spec"])
    affinity = dict(spec.get("affinity") or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    required = dict(node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = [dict(t) for t in required.get("nodeSelectorTerms") or [{}]]
    rule = {"key": HOSTNAME_LABEL, "operator": "NotIn", "values": list(nodes)}
    for term in terms:
        term["matchExpressions"] = [*(term.get("matchExpressions") or []), rule]
    required["nodeSelectorTerms"] = terms
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
    affinity["nodeAffinity"] = node_affinity
    spec["affinity"] = affinity
    return {**pod, "spec": spec}


def unhealthy_by_resource(data: Mapping[str, Any] | None) -> dict[str, dict[int, str]]:
    """Device resource -> its faulty NPUs (unhealthy_npus), for every resource a device-info ConfigMap's
    DeviceList reports a fault of; resources without one are left out (issue 25: the shared health index keeps
    only the faults, nodehealth.py)."""
    if not data:
        return {}
    try:
        devices = (
            json.loads(str(data.get(DEVICE_INFO_KEY) or "{}")).get("DeviceInfo", {}).get("DeviceList", {})
        )
    except (ValueError, AttributeError):
        return {}
    if not isinstance(devices, dict):
        return {}
    resources = {
        str(key)[: -len(suffix)]
        for key, value in devices.items()
        for suffix in (UNHEALTHY_SUFFIX, NETWORK_UNHEALTHY_SUFFIX)
        if str(key).endswith(suffix) and value
    }
    out = {r: unhealthy_npus(data, r) for r in sorted(resources)}
    return {r: found for r, found in out.items() if found}
