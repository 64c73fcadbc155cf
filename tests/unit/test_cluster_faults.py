"""The local cluster's injected faults (issue 23): the device-info ConfigMap as MindCluster's device plugin writes
it, allocation and allocatable without the unhealthy NPU, and the fault file the CLI writes for the kubelet."""

import hashlib
import json
from pathlib import Path

import pytest

from zoo_operator import faults as operator_faults
from zoocluster import __main__ as cli
from zoocluster import faults, nodes
from zoocluster.devices import DeviceAllocator


def test_device_info_config_map_has_the_plugins_name_keys_and_check_code():
    cm = faults.device_info_config_map("ascend-node-1", 8, (3,), now=1718702470)
    assert cm["metadata"] == {"name": "mindx-dl-deviceinfo-ascend-node-1", "namespace": "kube-system"}
    assert set(cm["data"]) == {"DeviceInfoCfg", "ManuallySeparateNPU"}
    data = json.loads(cm["data"]["DeviceInfoCfg"])
    devices = data["DeviceInfo"]["DeviceList"]
    assert devices["huawei.com/Ascend910-Unhealthy"] == "Ascend910-3"
    assert devices["huawei.com/Ascend910"] == ",".join(f"Ascend910-{i}" for i in (0, 1, 2, 4, 5, 6, 7))
    assert devices["huawei.com/Ascend910-NetworkUnhealthy"] == ""
    assert data["DeviceInfo"]["UpdateTime"] == 1718702470
    # MakeDataHash: sha256 of the JSON of DeviceInfo, keys sorted as Go's encoding/json writes a map.
    body = json.dumps(data["DeviceInfo"], separators=(",", ":"), sort_keys=True).encode()
    assert data["CheckCode"] == hashlib.sha256(body).hexdigest()
    # The operator reads what the twin writes.
    assert operator_faults.unhealthy_npus(cm["data"], "huawei.com/Ascend910") == {3: "NPUUnhealthy"}
    healthy = faults.device_info_config_map("ascend-node-1", 8, ())
    assert operator_faults.unhealthy_npus(healthy["data"], "huawei.com/Ascend910") == {}


def test_an_unhealthy_npu_is_never_handed_out_and_leaves_allocatable():
    alloc = DeviceAllocator(4)
    alloc.unhealthy = frozenset({0, 2})
    assert alloc.allocate("a", 1) == [1]
    assert alloc.allocate("b", 1) == [3]
    assert alloc.allocate("c", 1) is None  # 2 of 4 are unhealthy, 2 held
    spec = nodes.NodeSpec("n", capacity={"cpu": "16", "huawei.com/Ascend910": "8"})
    status = nodes.node_status(spec, "127.0.0.1", 10250, "2026-01-01T00:00:00Z", unhealthy=2)
    assert status["allocatable"]["huawei.com/Ascend910"] == "6"
    assert (
        status["capacity"]["huawei.com/Ascend910"] == "8"
    )  # capacity keeps them, as the device manager does


def test_fault_file_round_trip_and_the_cli_refuses_what_the_cluster_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ZOO_CLUSTER_STATE_DIR", str(tmp_path))
    cfg = cli.config.from_env()
    assert "unhealthy" in cli.inject(cfg, "npu-fault", ["ascend-node-2", "5"], heal=False)
    cli.inject(cfg, "node-down", ["cpu-node-1"], heal=False)
    path = faults.path_in(tmp_path / "kubelet")
    assert faults.load(path) == faults.Faults({"ascend-node-2": (5,)}, frozenset({"cpu-node-1"}))
    cli.inject(cfg, "npu-fault", ["ascend-node-2", "5"], heal=True)
    cli.inject(cfg, "node-up", ["cpu-node-1"], heal=False)
    assert faults.load(path) == faults.Faults()
    with pytest.raises(ValueError, match="has NPUs 0..7"):
        cli.inject(cfg, "npu-fault", ["ascend-node-2", "8"], heal=False)
    with pytest.raises(ValueError, match="has no NPUs"):
        cli.inject(cfg, "npu-fault", ["cpu-node-1", "0"], heal=False)
    with pytest.raises(ValueError, match="not a node of this cluster"):
        cli.inject(cfg, "node-down", ["nowhere"], heal=False)
    with pytest.raises(ValueError, match="expected NODE DEVICE"):
        cli.inject(cfg, "npu-fault", ["ascend-node-2"], heal=False)
