"""zoo-launch: argument split, rank-table parsing, the wait loop and host resolution."""

import json
import socket
import threading
import time

import pytest

from zoo_workloads import launch
from zoo_workloads.errors import ConfigError, RankTableTimeout

# Two nodes; 10.0.0.10 sorts first as a string. Physical ids are what the device plugin handed out.
TABLE = {
    "version": "1.0",
    "server_count": "2",
    "server_list": [
        {
            "server_id": "10.0.0.10",
            "device": [
                {"device_id": "2", "device_ip": "d", "rank_id": "0"},
                {"device_id": "5", "device_ip": "d", "rank_id": "1"},
            ],
            "host_nic_ip": "reserve",
        },
        {
            "server_id": "10.0.0.9",
            "device": [
                {"device_id": "0", "device_ip": "d", "rank_id": "2"},
                {"device_id": "3", "device_ip": "d", "rank_id": "3"},
            ],
            "host_nic_ip": "reserve",
        },
    ],
    "status": "completed",
}


def test_split_command():
    assert launch.split_command(["--", "zoo-train", "--model", "m"]) == ["zoo-train", "--model", "m"]
    with pytest.raises(ConfigError, match="missing `--`"):
        launch.split_command(["zoo-train"])
    with pytest.raises(ConfigError, match="no command"):
        launch.split_command(["--"])


def test_rank_table_completed():
    assert launch.rank_table_completed(json.dumps({"version": "1.0", "status": "completed"}))
    assert not launch.rank_table_completed(json.dumps({"status": "initializing"}))
    assert not launch.rank_table_completed('{"status": "compl')  # half-written file
    assert not launch.rank_table_completed("")


def test_lookup_rank_by_node_ip_and_physical_device():
    text = json.dumps(TABLE)
    assert launch.lookup_rank(text, "10.0.0.9", [3]) == ("3", 3)
    assert launch.lookup_rank(text, "10.0.0.10", [5], rank_size=4) == ("1", 5)
    assert launch.lookup_rank(text, "10.0.0.9", [5]) is None  # not this node's device: keep waiting
    assert launch.lookup_rank(text, "10.0.0.11", [0]) is None
    assert launch.lookup_rank(json.dumps({**TABLE, "status": "initializing"}), "10.0.0.9", [3]) is None
    assert launch.lookup_rank("not json", "10.0.0.9", [3]) is None
    with pytest.raises(ConfigError, match="RANK_SIZE is 8"):
        launch.lookup_rank(text, "10.0.0.9", [3], rank_size=8)


def test_visible_devices_and_logical_id():
    assert launch.visible_devices("3") == [3]
    assert launch.visible_devices("4,1") == [1, 4]
    assert launch.visible_devices("0-3") == [0, 1, 2, 3]
    for bad in ("", "x", "1,", "2-"):
        with pytest.raises(ConfigError, match="ASCEND_VISIBLE_DEVICES"):
            launch.visible_devices(bad)
    # The container sees only its NPUs, numbered from 0: physical 5 in a one-NPU pod is logical 0.
    assert launch.logical_device(5, [5]) == 0
    assert launch.logical_device(6, [4, 6, 5]) == 2
    with pytest.raises(ConfigError, match="not among"):
        launch.logical_device(1, [0])


def test_wait_returns_once_a_thread_completes_the_table(tmp_path):
    table = tmp_path / "hccl.json"
    table.write_text(json.dumps({"status": "initializing"}))

    def complete() -> None:
        time.sleep(0.3)
        table.write_text(json.dumps(TABLE))

    worker = threading.Thread(target=complete)
    worker.start()
    started = time.monotonic()
    assert launch.wait_for_rank(table, "10.0.0.10", [2], timeout=10, poll=0.05) == ("0", 2)
    worker.join()
    assert 0.25 < time.monotonic() - started < 5


def test_wait_takes_no_rank_from_another_attempts_table(tmp_path):
    # The old gang's completed table lists this very device: a pod of attempt 2 waits for its own attempt's.
    table = tmp_path / "hccl.json"
    table.write_text(json.dumps(TABLE))
    (tmp_path / "attempt").write_text("1")
    with pytest.raises(RankTableTimeout, match="of attempt 2 \\(the table is of attempt 1\\)"):
        launch.wait_for_rank(table, "10.0.0.10", [2], timeout=0.2, poll=0.05, attempt="2")
    (tmp_path / "attempt").write_text("2")
    assert launch.wait_for_rank(table, "10.0.0.10", [2], timeout=1, poll=0.05, attempt="2") == ("0", 2)
    # Without an attempt (a table from `zoo-operator render`, or an older operator) the table alone counts.
    assert launch.wait_for_rank(table, "10.0.0.10", [2], timeout=1, poll=0.05) == ("0", 2)


def test_wait_times_out(tmp_path):
    table = tmp_path / "hccl.json"
    table.write_text(json.dumps({"status": "initializing"}))
    with pytest.raises(RankTableTimeout, match="10.0.0.9"):
        launch.wait_for_rank(table, "10.0.0.9", [0], timeout=0.2, poll=0.05)


def test_resolve_host_retries_until_the_name_exists():
    calls = []

    def resolver(host: str) -> str:
        calls.append(host)
        if len(calls) < 3:
            raise socket.gaierror("not yet")
        return "10.1.2.3"

    assert launch.resolve_host("job-sched.job", timeout=5, poll=0.01, resolver=resolver) == "10.1.2.3"
    assert len(calls) == 3


def test_resolve_host_gives_up():
    def never(host: str) -> str:
        raise socket.gaierror("no such host")

    with pytest.raises(ConnectionError, match="MS_SCHED_HOST"):
        launch.resolve_host("nowhere", timeout=0.05, poll=0.01, resolver=never)


def test_prepare_environment_kinds(tmp_path):
    table = tmp_path / "hccl.json"
    table.write_text(json.dumps(TABLE))
    env = {
        "RANK_TABLE_FILE": str(table),
        "HOST_IP": "10.0.0.9",
        "ASCEND_VISIBLE_DEVICES": "3",
        "RANK_SIZE": "4",
    }
    # RANK_ID from hccl.json for the physical NPU 3; DEVICE_ID is logical: 0 in a one-NPU pod.
    assert launch.prepare_environment(env) == {
        "RANK_ID": "3",
        "DEVICE_ID": "0",
        "ZOO_PHYSICAL_DEVICE_ID": "3",
    }
    static = {"RANK_TABLE_FILE": str(table), "ZOO_ASCEND_SERVER_ID": "10.0.0.10", "ZOO_ASCEND_DEVICE_ID": "5"}
    assert launch.prepare_environment(static)["RANK_ID"] == "1"
    assert launch.prepare_environment({"MS_ROLE": "MS_WORKER", "MS_SCHED_HOST": "localhost"}) == {
        "MS_SCHED_HOST": "127.0.0.1"
    }
    assert launch.prepare_environment({}) == {}
    with pytest.raises(ConfigError, match="HOST_IP"):
        launch.prepare_environment({"RANK_TABLE_FILE": str(table), "ASCEND_VISIBLE_DEVICES": "3"})
    with pytest.raises(ConfigError, match="ASCEND_VISIBLE_DEVICES is not set and .* has no davinci"):
        launch.prepare_environment(
            {"RANK_TABLE_FILE": str(table), "HOST_IP": "10.0.0.9", "ZOO_ASCEND_DEVICE_DIR": str(tmp_path)}
        )


def test_on_dra_the_npus_are_the_davinci_nodes_the_container_sees(tmp_path):
    """MindCluster's DRA driver sets no ASCEND_VISIBLE_DEVICES; its CDI spec gives /dev/davinci<N> (the physical
    id, same number as on the host) plus shared nodes such as davinci_manager, which are not NPUs."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("davinci5", "davinci3", "davinci_manager", "devmm_svm", "hisi_hdc"):
        (dev / name).touch()
    assert launch.device_node_ids(dev) == [3, 5]
    table = tmp_path / "hccl.json"
    table.write_text(json.dumps(TABLE))
    env = {"RANK_TABLE_FILE": str(table), "HOST_IP": "10.0.0.9", "ZOO_ASCEND_DEVICE_DIR": str(dev)}
    # Physical 3 is logical 0 of the two (CANN numbers a container's NPUs from 0), rank 3 in the table.
    assert launch.prepare_environment(env) == {
        "RANK_ID": "3",
        "DEVICE_ID": "0",
        "ZOO_PHYSICAL_DEVICE_ID": "3",
    }
    (dev / "davinci3").unlink()
    dynamic = {"MS_ROLE": "MS_WORKER", "MS_SCHED_HOST": "localhost", "ZOO_ASCEND_DEVICE_DIR": str(dev)}
    assert launch.prepare_environment(dynamic) == {"MS_SCHED_HOST": "127.0.0.1", "DEVICE_ID": "0"}


def test_main_exits_75_and_writes_termination_on_timeout(tmp_path, monkeypatch):
    term = tmp_path / "term"
    (tmp_path / "hccl.json").write_text("{}")
    for key, value in {
        "RANK_TABLE_FILE": str(tmp_path / "hccl.json"),
        "HOST_IP": "10.0.0.9",
        "ASCEND_VISIBLE_DEVICES": "0",
        "ZOO_RANKTABLE_TIMEOUT": "0.1",
        "ZOO_TERMINATION_LOG": str(term),
    }.items():
        monkeypatch.setenv(key, value)
    assert launch.main(["--", "true"]) == 75
    assert json.loads(term.read_text())["reason"] == "RankTableTimeout"


def test_launcher_execs_the_command_with_the_rank_exported(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "hccl.json").write_text(json.dumps(TABLE))
    env = {
        "PATH": "/usr/bin:/bin",
        "RANK_TABLE_FILE": str(tmp_path / "hccl.json"),
        "HOST_IP": "10.0.0.10",
        "ASCEND_VISIBLE_DEVICES": "5",
        "ZOO_TERMINATION_LOG": str(tmp_path / "term"),
    }
    show = "import os; print(os.environ['RANK_ID'], os.environ['DEVICE_ID'], os.getpid())"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "zoo-launch"), "--", sys.executable, "-c", show],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].split()[:2] == ["1", "0"]
    dynamic = {
        "PATH": "/usr/bin:/bin",
        "MS_ROLE": "MS_WORKER",
        "MS_SCHED_HOST": "localhost",
        "ZOO_TERMINATION_LOG": str(tmp_path / "term"),
    }
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "zoo-launch"),
            "--",
            sys.executable,
            "-c",
            "import os; print(os.environ['MS_SCHED_HOST'])",
        ],
        capture_output=True,
        text=True,
        env=dynamic,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "127.0.0.1"


def test_cann_set_env_scripts_are_sourced(tmp_path):
    script = tmp_path / "set_env.sh"
    script.write_text(
        "export ASCEND_HOME_PATH=/opt/cann\nexport LD_LIBRARY_PATH=/opt/cann/lib64:$LD_LIBRARY_PATH\n"
    )
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "/x", "ZOO_CANN_SET_ENV": str(script)}
    got = launch.cann_environment(env)
    assert got == {"ASCEND_HOME_PATH": "/opt/cann", "LD_LIBRARY_PATH": "/opt/cann/lib64:/x"}
    assert launch.cann_environment({"PATH": "/usr/bin:/bin"}) == {}
    with pytest.raises(ConfigError, match="not found"):
        launch.cann_environment({**env, "ZOO_CANN_SET_ENV": f"{script}:{tmp_path / 'nnal.sh'}"})


def test_dynamic_launch_on_ascend_exports_logical_device_0():
    env = {"MS_ROLE": "MS_WORKER", "MS_SCHED_HOST": "localhost", "ASCEND_VISIBLE_DEVICES": "6"}
    assert launch.prepare_environment(env) == {"MS_SCHED_HOST": "127.0.0.1", "DEVICE_ID": "0"}


def test_a_bad_timeout_is_named_never_echoed() -> None:
    """Issue 11: an env value may come from a Secret; the error names the variable, not the value."""
    with pytest.raises(ConfigError) as info:
        launch.prepare_environment(
            {"MS_ROLE": "MS_WORKER", "MS_SCHED_HOST": "h", "ZOO_RESOLVE_TIMEOUT": "s3cr3t-value"}
        )
    assert "ZOO_RESOLVE_TIMEOUT" in str(info.value) and "s3cr3t" not in str(info.value)
