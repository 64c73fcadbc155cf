"""The Ascend checks a rank makes on the local cluster's simulated NPUs (zoo_workloads.training.ascend_check)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_launcher import TABLE  # the same two-node table zoo-launch is tested with

from zoo_workloads.errors import ConfigError
from zoo_workloads.training import ascend_check


def rank_env(
    tmp_path: Path, table: dict = TABLE, devices: tuple[int, ...] = (3,), **over: str
) -> dict[str, str]:
    """The environment of physical NPU 3 on 10.0.0.9 (rank 3 of 4) as zoo-launch and the fake plugin leave it."""
    (tmp_path / "hccl.json").write_text(json.dumps(table))
    dev = tmp_path / "dev"
    dev.mkdir(exist_ok=True)
    for n in devices:
        (dev / f"davinci{n}").touch()
    env = {
        "ZOO_ASCEND_SIMULATE": "1",
        "ZOO_ASCEND_DEVICE_DIR": str(dev),
        "ASCEND_VISIBLE_DEVICES": "3",
        "DEVICE_ID": "0",
        "RANK_ID": "3",
        "RANK_SIZE": "4",
        "RANK_TABLE_FILE": str(tmp_path / "hccl.json"),
        "HOST_IP": "10.0.0.9",
        "HCCL_CONNECT_TIMEOUT": "600",
    }
    return {**env, **over}


def test_a_consistent_rank_passes(tmp_path: Path) -> None:
    env = rank_env(tmp_path)
    assert ascend_check.problems(env) == []
    ascend_check.verify(env)


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        (
            {"DEVICE_ID": "3"},
            "DEVICE_ID '3' is not a logical device 0..0",
        ),  # the physical id: 7 of 8 ranks fail
        ({"RANK_ID": "2"}, "RANK_ID '2' but the table gives NPU 3 of 10.0.0.9 rank 3"),
        ({"RANK_SIZE": "8"}, "4 devices but RANK_SIZE is 8"),
        ({"HOST_IP": "10.0.0.11"}, "lists no NPU 3 of server '10.0.0.11'"),
        ({"ASCEND_VISIBLE_DEVICES": ""}, "ASCEND_VISIBLE_DEVICES is empty"),
        ({"ASCEND_VISIBLE_DEVICES": "3,4"}, "device files [3] in"),
        ({"HCCL_CONNECT_TIMEOUT": "30"}, "HCCL accepts 120..7200"),
    ],
)
def test_what_hccl_would_refuse_is_refused(tmp_path: Path, over: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match="Ascend environment") as info:
        ascend_check.verify(rank_env(tmp_path, **over))
    assert expected in str(info.value)


def test_the_container_sees_only_its_own_npu(tmp_path: Path) -> None:
    assert "are not the visible devices [3]" in " ".join(
        ascend_check.problems(rank_env(tmp_path, devices=(0, 3)))
    )


def test_incomplete_or_broken_tables(tmp_path: Path) -> None:
    partial = {**TABLE, "status": "initializing"}
    assert ascend_check.problems(rank_env(tmp_path, partial)) == ["rank table: not completed"]
    servers = json.loads(json.dumps(TABLE["server_list"]))
    servers[1]["device"][1]["rank_id"] = "1"
    found = " ".join(ascend_check.problems(rank_env(tmp_path, {**TABLE, "server_list": servers})))
    assert "not 0..n-1" in found
    found = " ".join(ascend_check.problems(rank_env(tmp_path, {**TABLE, "server_count": "16"})))
    assert "server_count '16' but 2 servers" in found


def test_only_the_exact_switch_simulates() -> None:
    assert ascend_check.simulated({"ZOO_ASCEND_SIMULATE": "1"})
    for value in ("", "0", "true", "yes"):
        assert not ascend_check.simulated({"ZOO_ASCEND_SIMULATE": value})
    assert not ascend_check.simulated({})


def test_dynamic_launch_checks_devices_but_needs_no_table(tmp_path: Path) -> None:
    env = rank_env(tmp_path)
    for key in ("RANK_TABLE_FILE", "RANK_ID"):
        del env[key]
    assert ascend_check.problems({**env, "MS_ROLE": "MS_WORKER"}) == []
    assert "DEVICE_ID '1'" in " ".join(ascend_check.problems({**env, "DEVICE_ID": "1"}))
