"""The HCCL rank table, built from plain device data (no API calls).

Grouping rule (docs/contracts.md): ONE `server_list` entry per node, keyed by the node's IP; servers ordered by
that IP compared as strings, devices within a server by physical device_id as numbers, rank_id dense from 0 in
that order. This is the table MindSpore's `hccl_tools.py` writes for a cluster of whole servers (server_id = the
host IP, device_id = the physical NPU, `host_nic_ip` "reserve") and the one the ModelZoo scripts train with.
MindCluster's own ascend-operator (`pkg/ranktable/common/common.go`) instead gives every POD its own entry; with
one pod per device that turns an 8-NPU server into 8 one-device "servers" whose order depends on pod UIDs (plugins
>= v26 put the pod UID in `server_id`), so we do not follow it: the node IP, whichever annotation generation
carries it, is the server.

Both device-plugin annotation generations are read (ascend-device-plugin `pkg/device/ascendcommon.go`,
getConfigAnno): up to v7 `server_id` is the node IP (7.3 adds `host_ip`); from v26 `server_id` is the pod UID and
the node IP is in `host_ip`/`server_ip` (with `rack_id`, `server_index`). Every value in the table is a string.

`status` stays "initializing" (with an empty server_list) until every rank's device is known, then "completed".
Version "1.2" (A3 super pods) adds host_ip, container_ip, hardware_type, super_device_id and a super_pod_list.
The ConfigMap holds hccl.json only: each pod finds its rank in it by (node IP, physical device id), so nothing in
the ConfigMap grows with pod names; a big table is written without indentation, so 4096 ranks stay far below
the 1 MiB object limit.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any

from zoo_operator import conditions as c

INITIALIZING = "initializing"
COMPLETED = "completed"
HARDWARE_TYPE = "Ascend910"
CONFIG_MAP_LIMIT = 1024 * 1024
"""Bytes a ConfigMap's data may hold (the apiserver's limit on one object's data)."""


@dataclasses.dataclass(frozen=True)
class Device:
    """The device one pod (one rank) got: from the device plugin's annotation or a static map.

    `server_id` is the grouping key of the table: the node IP (never a pod UID).
    """

    pod_name: str
    server_id: str
    device_id: str
    device_ip: str
    super_device_id: str | None = None
    container_ip: str | None = None
    super_pod_id: str | None = None


def _is_ip(text: object) -> bool:
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return False
    return True


def node_ip_of(data: Mapping[str, Any]) -> str | None:
    """The node IP of an annotation object, whichever plugin generation wrote it (None when it has none).

    >= v26: `host_ip` (or `server_ip`); <= v7: `server_id` (7.3 also has `host_ip`, the same address).
    """
    for key in ("host_ip", "server_ip", "server_id"):
        if _is_ip(data.get(key)):
            return str(data[key])
    return None


def parse_annotation(text: str, host_ip: str | None = None) -> Device:
    """A Device from the device plugin's annotation (`ascend-910-configuration` or `ascend-npu-configuration`).

    One pod holds one device, so the lowest physical device_id is taken. `host_ip` (the pod's status.hostIP) is
    used when the annotation names no node IP. Raises ValueError (one line) on anything malformed.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"device annotation is not JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise ValueError("device annotation must be a JSON object")  # noqa: TRY004 - callers catch ValueError
    devices = data.get("devices")
    if not isinstance(devices, list) or not devices or not all(isinstance(d, dict) for d in devices):
        raise ValueError("device annotation needs a non-empty 'devices' list")
    for key in ("pod_name", "server_id"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"device annotation needs a string {key!r}")
    for dev in devices:
        if not str(dev.get("device_id", "")).isdigit() or not dev.get("device_ip"):
            raise ValueError("every device in the annotation needs a numeric device_id and a device_ip")
    node_ip = node_ip_of(data) or (host_ip if _is_ip(host_ip) else None)
    if node_ip is None:
        raise ValueError(
            "device annotation names no node IP (server_id is not an IP and host_ip/server_ip are missing)"
        )
    first = min(devices, key=lambda d: int(str(d["device_id"])))
    sdid = first.get("super_device_id")
    spid = data.get("super_pod_id")
    return Device(
        pod_name=data["pod_name"],
        server_id=node_ip,
        device_id=str(first["device_id"]),
        device_ip=str(first["device_ip"]),
        super_device_id=None if sdid is None else str(sdid),
        super_pod_id=None if spid is None or spid == "" or str(spid) == "-1" else str(spid),
    )


def parse_server_annotation(text: str, host_ip: str | None = None) -> list[Device]:
    """Every device of a server pod's annotation (spec.device.podsPer server, issue 21), by physical id: the pod
    holds all of its node's perNode NPUs, so each is one rank of the same server (the node IP). The checks and
    errors are parse_annotation's."""
    first = parse_annotation(text, host_ip)  # validates the whole annotation
    devices = json.loads(text)["devices"]
    spid = first.super_pod_id
    return [
        Device(
            pod_name=first.pod_name,
            server_id=first.server_id,
            device_id=str(dev["device_id"]),
            device_ip=str(dev["device_ip"]),
            super_device_id=None if dev.get("super_device_id") is None else str(dev["super_device_id"]),
            super_pod_id=spid,
        )
        for dev in sorted(devices, key=lambda d: int(str(d["device_id"])))
    ]


def order(devices: Sequence[Device]) -> list[Device]:
    """Devices in rank order: node IP as a string, then device_id as a number (hccl_tools' order)."""
    return sorted(devices, key=lambda d: (d.server_id, int(d.device_id), d.pod_name))


def build(devices: Sequence[Device], rank_size: int, version: str = "1.0") -> dict[str, Any]:
    """The hccl.json document for `rank_size` ranks given the devices known so far."""
    if version not in ("1.0", "1.2"):
        raise ValueError(f"rank table version must be 1.0 or 1.2, got {version!r}")
    complete = len(devices) == rank_size and rank_size > 0
    servers: dict[str, list[Device]] = {}
    for dev in order(devices) if complete else []:
        servers.setdefault(dev.server_id, []).append(dev)
    rank = 0
    server_list = []
    for server_id, devs in servers.items():
        entries = []
        for dev in devs:
            entry = {"device_id": dev.device_id, "device_ip": dev.device_ip, "rank_id": str(rank)}
            if version == "1.2":
                entry["super_device_id"] = (
                    dev.super_device_id if dev.super_device_id is not None else dev.device_id
                )
            entries.append(entry)
            rank += 1
        server: dict[str, Any] = {"server_id": server_id, "device": entries, "host_nic_ip": "reserve"}
        if version == "1.2":
            server.update(
                host_ip=server_id, container_ip=devs[0].container_ip or server_id, hardware_type=HARDWARE_TYPE
            )
        server_list.append(server)
    table: dict[str, Any] = {
        "version": version,
        "server_count": str(len(server_list)),
        "server_list": server_list,
    }
    if version == "1.2":
        pods: dict[str, list[str]] = {}
        for server_id, devs in servers.items():
            pods.setdefault(devs[0].super_pod_id or "0", []).append(server_id)
        table["super_pod_list"] = [
            {"super_pod_id": spid, "server_list": [{"server_id": s} for s in ids]}
            for spid, ids in sorted(pods.items(), key=lambda kv: (len(kv[0]), kv[0]))
        ]
    table["status"] = COMPLETED if complete else INITIALIZING
    return table


def pod_ranks(devices: Sequence[Device], rank_size: int) -> dict[str, int]:
    """Each pod's lowest rank_id in the table `build` writes from these devices (empty until it is complete): the
    RANK_ID zoo-launch exports to that pod, which follows the node-IP order, not the pod's index."""
    if len(devices) != rank_size or rank_size <= 0:
        return {}
    ranks: dict[str, int] = {}
    for rank, dev in enumerate(order(devices)):
        ranks.setdefault(dev.pod_name, rank)
    return ranks


INDENT_LIMIT = 256 * 1024
"""Bytes of indented hccl.json above which it is written compact: indentation doubles a 4096-rank table."""


def config_map_data(
    devices: Sequence[Device], rank_size: int, version: str = "1.0", attempt: int = 0
) -> dict[str, str]:
    """The ConfigMap's data: hccl.json (pods derive their rank from it), indented unless that makes it big, and
    the attempt whose pods it lists (c.RANKTABLE_ATTEMPT_KEY)."""
    table = build(devices, rank_size, version)
    text = json.dumps(table, indent=2)
    if len(text) > INDENT_LIMIT:
        text = json.dumps(table, separators=(",", ":"))
    return {c.RANKTABLE_FILE: text, c.RANKTABLE_ATTEMPT_KEY: str(attempt)}


def devices_from_allocations(allocations: Sequence[Mapping[str, Any]]) -> list[Device]:
    """Devices from a list of device-plugin annotation objects (the `render --allocations` file)."""
    return [parse_annotation(json.dumps(dict(item))) for item in allocations]
