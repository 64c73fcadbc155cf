"""The fake Ascend device plugin: allocation and the annotation the operator reads."""

import json
from pathlib import Path

import pytest

from zoo_operator import ranktable
from zoo_workloads import launch
from zoo_workloads.training import ascend_check
from zoocluster import containers, devices
from zoocluster.devices import DeviceAllocator, annotation_value, ids_from_annotation, requested_devices

POD = {
    "metadata": {"name": "job-worker-0", "uid": "0b5d6f7e-1111-4c2a-9d3e-5f6a7b8c9d0e"},
    "spec": {"schedulerName": "default-scheduler"},
}


def test_allocation_is_lowest_free_first_and_released_ids_are_reused():
    alloc = DeviceAllocator(8)
    assert alloc.allocate("a", 3) == [0, 1, 2]
    assert alloc.allocate("b", 4) == [3, 4, 5, 6]
    assert alloc.allocate("a", 3) == [0, 1, 2]  # idempotent per pod
    assert alloc.allocate("c", 2) is None  # only 7 is free
    alloc.release("a")
    assert alloc.allocate("c", 2) == [0, 1]


def test_annotation_up_to_v7_has_the_node_ip_as_server_id():
    value = json.loads(annotation_value(POD, "127.0.2.2", 2, [0, 5]))
    assert value == {
        "pod_name": "job-worker-0",
        "server_id": "127.0.2.2",
        "super_pod_id": -1,
        "devices": [
            {"device_id": "0", "device_ip": "192.168.2.101", "super_device_id": "0"},
            {"device_id": "5", "device_ip": "192.168.2.106", "super_device_id": "5"},
        ],
    }
    assert ids_from_annotation(json.dumps(value)) == [0, 5]
    assert ids_from_annotation("not json") == []


def test_annotation_from_v26_has_the_pod_uid_as_server_id():
    value = json.loads(annotation_value(POD, "127.0.2.2", 2, [3], "v26"))
    assert value["server_id"] == POD["metadata"]["uid"]
    assert value["host_ip"] == value["server_ip"] == "127.0.2.2"
    assert value["rack_id"] == "-1" and value["server_index"] == "1"
    assert ids_from_annotation(json.dumps(value)) == [3]


def test_plugin_config_from_nodes_yaml_and_environment():
    assert devices.plugin_config({}, {}) == devices.PluginConfig("v7", False, 3.0)
    cfg = devices.plugin_config({"generation": "v26", "volcano": True, "annotateDelaySeconds": 1}, {})
    assert cfg == devices.PluginConfig("v26", True, 1.0)
    assert (
        devices.plugin_config({"generation": "v26"}, {"ZOO_ASCEND_PLUGIN_GENERATION": "v7"}).generation
        == "v7"
    )
    assert not devices.plugin_config({"volcano": True}, {"ZOO_ASCEND_PLUGIN_VOLCANO": "false"}).volcano
    with pytest.raises(ValueError, match="generation"):
        devices.plugin_config({"generation": "v8"}, {})
    assert (
        devices.plugin_config({}, {}).simulate and not devices.plugin_config({"simulate": False}, {}).simulate
    )
    with pytest.raises(TypeError, match="simulate"):
        devices.plugin_config({"simulate": "no"}, {})


def test_volcano_mode_refuses_pods_volcano_did_not_place():
    volcano = devices.PluginConfig(volcano=True)
    assert "not get valid pod" in devices.refusal(POD, volcano)
    assert devices.refusal({**POD, "spec": {"schedulerName": "volcano"}}, volcano) is None
    assert devices.refusal(POD, devices.PluginConfig()) is None


def test_container_sees_only_its_device(tmp_path: Path):
    shared = sorted(devices.SHARED_DEVICE_NODES)
    directory = devices.write_device_files(tmp_path / "dev", [5])
    assert sorted(p.name for p in directory.iterdir()) == sorted(["davinci5", *shared])
    devices.write_device_files(directory, [2])
    assert sorted(p.name for p in directory.iterdir()) == sorted(["davinci2", *shared])
    env = devices.container_env([2])
    assert env == {
        "ASCEND_VISIBLE_DEVICES": "2",
        "ZOO_ASCEND_SIMULATE": "1",
        "ZOO_ASCEND_DEVICE_DIR": devices.DEVICE_DIR,
    }
    # MindCluster's DRA driver: its CDI spec sets no ASCEND_VISIBLE_DEVICES (cdi/spec.go); the davinci nodes are all.
    assert devices.container_env([2, 3], dra=True) == {
        "ZOO_ASCEND_SIMULATE": "1",
        "ZOO_ASCEND_DEVICE_DIR": devices.DEVICE_DIR,
    }
    assert devices.container_env([]) == {}  # no NPU, no simulation switch
    pod = {"metadata": {"name": "p", "namespace": "n"}, "spec": {"volumes": []}}
    hosts, msg = tmp_path / "hosts", tmp_path / "msg"
    hosts.touch()
    msg.touch()
    mounts = containers.mounts(pod, {"name": "c"}, lambda v: tmp_path, hosts, msg, (), directory)
    assert {"source": str(directory), "target": devices.DEVICE_DIR, "readOnly": True, "file": False} in mounts


@pytest.mark.parametrize("generation", devices.GENERATIONS)
def test_twin_annotations_give_every_rank_logical_device_0_and_a_consistent_rank(
    tmp_path: Path, generation: str
):
    """16 pods, perNode 8, on two fake Ascend nodes: the plugin's annotations make the operator's table, from which
    zoo-launch derives every rank's RANK_ID and DEVICE_ID, which the workload's Ascend checks accept."""
    allocators = {1: DeviceAllocator(8), 2: DeviceAllocator(8)}
    placed = []
    for i in reversed(range(16)):  # pods start in any order
        node = 1 + i // 8
        pod = {"metadata": {"name": f"j-worker-{i}", "uid": f"uid-{i:04d}"}, "spec": {}}
        (phys,) = allocators[node].allocate(pod["metadata"]["uid"], 1)
        placed.append(
            (
                pod,
                f"127.0.23.{node}",
                phys,
                annotation_value(pod, f"127.0.23.{node}", node, [phys], generation),
            )
        )
    table = ranktable.config_map_data([ranktable.parse_annotation(a) for *_, a in placed], 16)["hccl.json"]
    parsed = json.loads(table)
    assert parsed["server_count"] == "2" and [s["server_id"] for s in parsed["server_list"]] == [
        "127.0.23.1",
        "127.0.23.2",
    ]
    (tmp_path / "hccl.json").write_text(table)
    ranks = []
    for pod, node_ip, phys, _ in placed:
        env = {
            "RANK_TABLE_FILE": str(tmp_path / "hccl.json"),
            "HOST_IP": node_ip,
            "RANK_SIZE": "16",
            "HCCL_CONNECT_TIMEOUT": "600",
            **devices.container_env([phys]),
        }
        env.update(launch.prepare_environment(env))
        assert env["DEVICE_ID"] == "0"
        env["ZOO_ASCEND_DEVICE_DIR"] = str(
            devices.write_device_files(tmp_path / pod["metadata"]["name"], [phys])
        )
        assert ascend_check.problems(env) == []
        ranks.append(int(env["RANK_ID"]))
    assert sorted(ranks) == list(range(16))


def test_requested_devices_counts_containers_and_init_containers():
    def ctr(n):
        return {"resources": {"limits": {"huawei.com/Ascend910": str(n)}}}

    pod = {"spec": {"containers": [ctr(1), ctr(2)], "initContainers": [ctr(1)]}}
    assert requested_devices(pod) == 3
    assert requested_devices({"spec": {"containers": [{}]}}) == 0


def test_an_ascend_node_has_the_driver_paths_pods_mount(tmp_path: Path):
    from zoocluster.volumes import PodVolumes

    files = devices.node_files(tmp_path / "node")
    assert (files[devices.DRIVER_PATH] / "version.info").is_file() and files[devices.NPU_SMI_PATH].is_file()
    vols = PodVolumes(tmp_path / "pod", None, lambda ns, n: None, lambda ns, n: None, files)  # type: ignore[arg-type]
    pod = {
        "metadata": {"namespace": "n", "name": "p"},
        "spec": {
            "volumes": [
                {"name": "d", "hostPath": {"path": devices.DRIVER_PATH, "type": "Directory"}},
                {"name": "s", "hostPath": {"path": devices.NPU_SMI_PATH, "type": "File"}},
            ]
        },
    }
    vols.sync(pod, "127.203.0.9", "127.0.23.2")
    assert vols.host_path(pod["spec"]["volumes"][0]) == files[devices.DRIVER_PATH]
    # A node without the files (a CPU node) fails the pod, as a real node without the driver would.
    bare = PodVolumes(tmp_path / "pod2", None, lambda ns, n: None, lambda ns, n: None)  # type: ignore[arg-type]
    missing = {"name": "d", "hostPath": {"path": str(tmp_path / "no-driver"), "type": "Directory"}}
    with pytest.raises(Exception, match="doesn't exist"):
        bare.sync({**pod, "spec": {"volumes": [missing]}}, "127.203.0.9", "127.0.23.2")
