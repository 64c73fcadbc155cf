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
    assert table == {"version": "1.0", "server_count": "1", "server_list": [
        {"server_id": "10.0.0.1", "device": [{"device_id": "0", "device_ip": "192.168.100.101", "rank_id": "0"}],
         "host_nic_ip": "reserve"}], "status": "completed"}
    # Key order as hccl_tools writes it.
    assert list(table) == ["version", "server_count", "server_list", "status"]


def test_golden_two_servers_four_devices() -> None:
    devices = [dev("j-worker-0", "10.0.0.9", "1"), dev("j-worker-1", "10.0.0.10", "3"),
               dev("j-worker-2", "10.0.0.9", "0"), dev("j-worker-3", "10.0.0.10", "2")]
    data = ranktable.config_map_data(devices, 4)
    # Text equality: key order and formatting are part of the format.
    assert data["hccl.json"] + "\n" == (GOLDEN / "hccl_1.0_two_servers.json").read_text()
    assert data["ranks.json"] + "\n" == (GOLDEN / "ranks_two_servers.json").read_text()


def test_servers_are_ordered_as_strings() -> None:
    devices = [dev("a", "10.0.0.9", "0"), dev("b", "10.0.0.10", "0"), dev("c", "10.0.0.100", "0")]
    table = ranktable.build(devices, 3)
    assert [s["server_id"] for s in table["server_list"]] == ["10.0.0.10", "10.0.0.100", "10.0.0.9"]
    assert ranktable.ranks(devices, 3)["b"]["rank_id"] == "0"


def test_devices_are_ordered_as_numbers_within_a_server() -> None:
    devices = [dev(f"p{d}", "10.0.0.1", str(d)) for d in (10, 2, 1, 0)]
    table = ranktable.build(devices, 4)
    entries = table["server_list"][0]["device"]
    assert [e["device_id"] for e in entries] == ["0", "1", "2", "10"]
    assert [e["rank_id"] for e in entries] == ["0", "1", "2", "3"]


@pytest.mark.parametrize(("total", "per_server"), [(1, 1), (8, 8), (16, 8), (24, 3), (256, 8), (1024, 8),
                                                   (1024, 16)])
def test_large_tables_are_dense_and_all_strings(total: int, per_server: int) -> None:
    # Server i is 10.1.0.<i>: its string order differs from its numeric order once i >= 10.
    devices = [dev(f"w-{i}", f"10.1.0.{i // per_server}", str(i % per_server),
                   f"192.168.{i % per_server}.{i // per_server % 256}") for i in range(total)]
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
    mapping = ranktable.ranks(devices, total)
    assert sorted(int(r["rank_id"]) for r in mapping.values()) == list(range(total))


def test_initializing_until_every_device_is_known() -> None:
    devices = [dev("a", "10.0.0.1", "0"), dev("b", "10.0.0.1", "1")]
    table = ranktable.build(devices[:1], 2)
    assert table["status"] == "initializing" and table["server_list"] == [] and table["server_count"] == "0"
    assert ranktable.ranks(devices[:1], 2) == {}
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
    text = json.dumps({"pod_name": "p", "server_id": "10.0.0.1",
                       "devices": [{"device_id": "3", "device_ip": "192.168.100.104"},
                                   {"device_id": "1", "device_ip": "192.168.100.102"}]})
    assert ranktable.parse_annotation(text) == Device("p", "10.0.0.1", "1", "192.168.100.102")


@pytest.mark.parametrize("text", ["not json", "[]", '{"pod_name": "p", "server_id": "s"}',
                                  '{"pod_name": "p", "server_id": "s", "devices": [{"device_id": "x"}]}',
                                  '{"server_id": "s", "devices": [{"device_id": "0", "device_ip": "i"}]}'])
def test_malformed_annotation_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="annotation"):
        ranktable.parse_annotation(text)
