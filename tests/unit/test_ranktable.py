"""The HCCL rank table: hccl_tools' format, ordering, status and the device-plugin annotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo_operator import ranktable
from zoo_operator.ranktable import Device

GOLDEN = Path(__file__).parent / "golden"


def dev(pod: str, server: str, device: str, ip: str | None = None) -> Device:
    return Device(pod, server, device, ip or f"192.168.{device}.{server.split('.')[-1]}")


def test_single_device_matches_hccl_tools_exactly() -> None:
    table = ranktable.build([dev("p0", "10.0.0.1", "0", "192.168.100.101")], 1)
    assert table == {
        "version": "1.0",
        "server_count": "1",
        "server_list": [
            {
                "server_id": "10.0.0.1",
                "device": [{"device_id": "0", "device_ip": "192.168.100.101", "rank_id": "0"}],
                "host_nic_ip": "reserve",
            }
        ],
        "status": "completed",
    }
    # Key order as hccl_tools writes it.
    assert list(table) == ["version", "server_count", "server_list", "status"]


def test_golden_two_servers_four_devices() -> None:
    devices = [
        dev("j-worker-0", "10.0.0.9", "1"),
        dev("j-worker-1", "10.0.0.10", "3"),
        dev("j-worker-2", "10.0.0.9", "0"),
        dev("j-worker-3", "10.0.0.10", "2"),
    ]
    data = ranktable.config_map_data(devices, 4)
    # Text equality: key order and formatting are part of the format. Beside it only the attempt it is of.
    assert data == {
        "hccl.json": (GOLDEN / "hccl_1.0_two_servers.json").read_text().rstrip("\n"),
        "attempt": "0",
    }


def test_servers_are_ordered_as_strings() -> None:
    devices = [dev("a", "10.0.0.9", "0"), dev("b", "10.0.0.10", "0"), dev("c", "10.0.0.100", "0")]
    table = ranktable.build(devices, 3)
    assert [s["server_id"] for s in table["server_list"]] == ["10.0.0.10", "10.0.0.100", "10.0.0.9"]
    assert table["server_list"][0]["device"][0]["rank_id"] == "0"


def test_devices_are_ordered_as_numbers_within_a_server() -> None:
    devices = [dev(f"p{d}", "10.0.0.1", str(d)) for d in (10, 2, 1, 0)]
    table = ranktable.build(devices, 4)
    entries = table["server_list"][0]["device"]
    assert [e["device_id"] for e in entries] == ["0", "1", "2", "10"]
    assert [e["rank_id"] for e in entries] == ["0", "1", "2", "3"]


@pytest.mark.parametrize(
    ("total", "per_server"), [(1, 1), (8, 8), (16, 8), (24, 3), (256, 8), (1024, 8), (1024, 16)]
)
def test_large_tables_are_dense_and_all_strings(total: int, per_server: int) -> None:
    # Server i is 10.1.0.<i>: its string order differs from its numeric order once i >= 10.
    devices = [
        dev(
            f"w-{i}",
            f"10.1.0.{i // per_server}",
            str(i % per_server),
            f"192.168.{i % per_server}.{i // per_server % 256}",
        )
        for i in range(total)
    ]
    table = ranktable.build(list(reversed(devices)), total)
    assert table["status"] == "completed"
    assert table["server_count"] == str(total // per_server)
    ranks = [int(d["rank_id"]) for s in table["server_list"] for d in s["device"]]
    assert ranks == list(range(total))
    servers = [s["server_id"] for s in table["server_list"]]
    assert servers == sorted(servers) and len(set(servers)) == len(servers)

    def strings(node: object) -> bool:
        if isinstance(node, dict):
            return all(strings(v) for v in node.values())
        if isinstance(node, list):
            return all(strings(v) for v in node)
        return isinstance(node, str)

    assert strings(table)


def test_initializing_until_every_device_is_known() -> None:
    devices = [dev("a", "10.0.0.1", "0"), dev("b", "10.0.0.1", "1")]
    table = ranktable.build(devices[:1], 2)
    assert table["status"] == "initializing" and table["server_list"] == [] and table["server_count"] == "0"
    assert ranktable.build(devices, 2)["status"] == "completed"


def test_version_1_2_has_super_pod_fields() -> None:
    devices = [Device("a", "10.0.0.1", "0", "192.168.0.1", super_device_id="7", container_ip="172.16.0.5")]
    table = ranktable.build(devices, 1, "1.2")
    server = table["server_list"][0]
    assert table["version"] == "1.2"
    assert server["host_ip"] == "10.0.0.1" and server["container_ip"] == "172.16.0.5"
    assert server["hardware_type"] == "Ascend910"
    assert server["device"][0]["super_device_id"] == "7"
    assert table["super_pod_list"] == [{"super_pod_id": "0", "server_list": [{"server_id": "10.0.0.1"}]}]
    with pytest.raises(ValueError, match="1.0 or 1.2"):
        ranktable.build(devices, 1, "2.0")


def test_parse_device_plugin_annotation() -> None:
    text = json.dumps(
        {
            "pod_name": "p",
            "server_id": "10.0.0.1",
            "devices": [
                {"device_id": "3", "device_ip": "192.168.100.104"},
                {"device_id": "1", "device_ip": "192.168.100.102"},
            ],
        }
    )
    assert ranktable.parse_annotation(text) == Device("p", "10.0.0.1", "1", "192.168.100.102")


def v7(pod: str, node_ip: str, device: int, node: int) -> dict[str, object]:
    """An annotation as ascend-device-plugin <= v7 writes it: server_id is the node IP."""
    return {
        "pod_name": pod,
        "server_id": node_ip,
        "super_pod_id": -1,
        "devices": [{"device_id": str(device), "device_ip": f"192.168.{node}.{101 + device}"}],
    }


def v26(pod: str, node_ip: str, device: int, node: int) -> dict[str, object]:
    """An annotation as ascend-device-plugin >= v26.0 writes it (pkg/device/ascendcommon.go getConfigAnno):
    server_id is the POD UID, the node IP is in host_ip and server_ip, plus rack_id and server_index."""
    return {
        "pod_name": pod,
        "server_id": f"6f1c2e0a-{node}{device:03d}-4b8e-9a51-3c0d2f7e{device:04d}",
        "host_ip": node_ip,
        "server_ip": node_ip,
        "rack_id": "-1",
        "server_index": str(node),
        "super_pod_id": -1,
        "devices": [
            {
                "device_id": str(device),
                "device_ip": f"192.168.{node}.{101 + device}",
                "super_device_id": str(device),
            }
        ],
    }


# 16 ranks with perNode 8 on two nodes whose IPs sort differently as strings and as numbers; the pods' devices
# are handed out in an order unrelated to the pods' indices, as a device plugin does.
PLACEMENT = [
    (f"j-worker-{i}", "10.0.0.9" if i < 8 else "10.0.0.10", (5 * i + 3) % 8, 1 if i < 8 else 2)
    for i in range(16)
]


@pytest.mark.parametrize("generation", [v7, v26])
def test_both_plugin_generations_give_the_same_table_one_server_per_node(generation) -> None:
    devices = [ranktable.parse_annotation(json.dumps(generation(*p))) for p in reversed(PLACEMENT)]
    assert {d.server_id for d in devices} == {"10.0.0.9", "10.0.0.10"}  # the node IP, never the pod UID
    data = ranktable.config_map_data(devices, 16)
    assert data == {
        "hccl.json": (GOLDEN / "hccl_1.0_16_ranks_two_nodes.json").read_text().rstrip("\n"),
        "attempt": "0",
    }
    table = json.loads(data["hccl.json"])
    assert table["server_count"] == "2"
    # Ranks dense in node order (IP as a string: 10.0.0.10 first), then physical device id.
    assert [
        (s["server_id"], d["device_id"], d["rank_id"]) for s in table["server_list"] for d in s["device"]
    ] == [
        (ip, str(d), str(r))
        for r, (ip, d) in enumerate(
            [("10.0.0.10", d) for d in range(8)] + [("10.0.0.9", d) for d in range(8)]
        )
    ]


def test_v26_annotation_without_a_node_ip_uses_the_pods_host_ip() -> None:
    text = json.dumps(
        {"pod_name": "p", "server_id": "0c7e-uid", "devices": [{"device_id": "2", "device_ip": "i"}]}
    )
    assert ranktable.parse_annotation(text, "10.0.0.7").server_id == "10.0.0.7"
    with pytest.raises(ValueError, match="no node IP"):
        ranktable.parse_annotation(text)


def test_a3_table_1_2_groups_super_pods() -> None:
    devices = []
    for pod, ip, device, node in PLACEMENT:
        anno = v26(pod, ip, device, node)
        anno["super_pod_id"] = str(node % 2)
        anno["devices"][0]["super_device_id"] = str(100 * node + device)  # type: ignore[index]
        devices.append(ranktable.parse_annotation(json.dumps(anno)))
    table = ranktable.build(devices, 16, "1.2")
    assert table["super_pod_list"] == [
        {"super_pod_id": "0", "server_list": [{"server_id": "10.0.0.10"}]},
        {"super_pod_id": "1", "server_list": [{"server_id": "10.0.0.9"}]},
    ]
    first = table["server_list"][0]
    assert first["host_ip"] == "10.0.0.10" and first["device"][3]["super_device_id"] == "203"


@pytest.mark.parametrize("version", ["1.0", "1.2"])
def test_4096_ranks_fit_the_config_map_limit(version: str) -> None:
    devices = [
        Device(
            f"a-very-long-job-name-for-size-worker-{i}",
            f"10.{i // 2048}.{i // 8 % 256}.1",
            str(i % 8),
            f"192.168.{i // 8 % 256}.{100 + i % 8}",
            str(i),
            "172.16.0.1",
            "0",
        )
        for i in range(4096)
    ]
    data = ranktable.config_map_data(devices, 4096, version)
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    assert json.loads(data["hccl.json"])["status"] == "completed"
    assert size < ranktable.CONFIG_MAP_LIMIT * 0.6, size  # room for the object's metadata


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"pod_name": "p", "server_id": "s"}',
        '{"pod_name": "p", "server_id": "s", "devices": [{"device_id": "x"}]}',
        '{"server_id": "s", "devices": [{"device_id": "0", "device_ip": "i"}]}',
    ],
)
def test_malformed_annotation_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="annotation"):
        ranktable.parse_annotation(text)
