"""The HCCL rank table, built from plain device data (no API calls).

Version "1.0" is written exactly as MindSpore's hccl_tools writes it: every value a string, servers ordered by
server_id compared as strings, devices within a server by device_id as numbers, rank_id dense from 0 in that
order, `host_nic_ip` "reserve". `status` stays "initializing" (with an empty server_list) until every rank's
device is known, then "completed". Version "1.2" adds host_ip, container_ip, hardware_type, super_device_id
and a super_pod_list.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

INITIALIZING = "initializing"
COMPLETED = "completed"
HARDWARE_TYPE = "Ascend910"


@dataclasses.dataclass(frozen=True)
class Device:
    """The device one pod (one rank) got: from the device plugin's annotation or a static map."""

    pod_name: str
    server_id: str
    device_id: str
    device_ip: str
    super_device_id: str | None = None
    container_ip: str | None = None


def parse_annotation(text: str) -> Device:
    """A Device from the annotation `ascend.kubectl.kubernetes.io/ascend-910-configuration`.

    Format: {"pod_name", "server_id", "devices": [{"device_id", "device_ip"}]}; one pod holds one device, so
    the lowest device_id is taken. Raises ValueError (one line) on anything malformed.
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
    first = min(devices, key=lambda d: int(str(d["device_id"])))
    sdid = first.get("super_device_id")
    return Device(
        pod_name=data["pod_name"],
        server_id=data["server_id"],
        device_id=str(first["device_id"]),
        device_ip=str(first["device_ip"]),
        super_device_id=None if sdid is None else str(sdid),
    )


def order(devices: Sequence[Device]) -> list[Device]:
    """Devices in rank order: server_id as a string, then device_id as a number (hccl_tools' order)."""
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
                entry["super_device_id"] = dev.super_device_id if dev.super_device_id is not None else dev.device_id
            entries.append(entry)
            rank += 1
        server: dict[str, Any] = {"server_id": server_id, "device": entries, "host_nic_ip": "reserve"}
        if version == "1.2":
            server.update(host_ip=server_id, container_ip=devs[0].container_ip or server_id,
                          hardware_type=HARDWARE_TYPE)
        server_list.append(server)
    table: dict[str, Any] = {"version": version, "server_count": str(len(server_list)), "server_list": server_list}
    if version == "1.2":
        table["super_pod_list"] = [{"super_pod_id": "0",
                                    "server_list": [{"server_id": s["server_id"]} for s in server_list]}]
    table["status"] = COMPLETED if complete else INITIALIZING
    return table


def ranks(devices: Sequence[Device], rank_size: int) -> dict[str, dict[str, str]]:
    """ranks.json: pod name -> {rank_id, device_id, server_id} (strings), empty until the table is complete."""
    if len(devices) != rank_size:
        return {}
    return {
        dev.pod_name: {"rank_id": str(rank), "device_id": dev.device_id, "server_id": dev.server_id}
        for rank, dev in enumerate(order(devices))
    }


def config_map_data(devices: Sequence[Device], rank_size: int, version: str = "1.0") -> dict[str, str]:
    """The ConfigMap's data: hccl.json and ranks.json as indented JSON text."""
    return {
        "hccl.json": json.dumps(build(devices, rank_size, version), indent=2),
        "ranks.json": json.dumps(ranks(devices, rank_size), indent=2, sort_keys=True),
    }


def devices_from_allocations(allocations: Sequence[Mapping[str, Any]]) -> list[Device]:
    """Devices from a list of device-plugin annotation objects (the `render --allocations` file)."""
    return [parse_annotation(json.dumps(dict(item))) for item in allocations]
