"""zoo-server-launch run for real (issue 21): a rank table of two servers, this pod holding physical NPUs 3 and 5
of server 10.0.0.1, and small Python children standing in for zoo-train. No mocks: real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo_workloads import contract, server_launch
from zoo_workloads.errors import ConfigError

TABLE = {
    "version": "1.0",
    "server_count": "2",
    "status": "completed",
    "server_list": [
        {
            "server_id": "10.0.0.2",
            "device": [
                {"device_id": "0", "device_ip": "192.168.2.1", "rank_id": "0"},
                {"device_id": "1", "device_ip": "192.168.2.2", "rank_id": "1"},
            ],
        },
        {
            "server_id": "10.0.0.1",
            "device": [
                {"device_id": "3", "device_ip": "192.168.1.4", "rank_id": "2"},
                {"device_id": "5", "device_ip": "192.168.1.6", "rank_id": "3"},
            ],
        },
    ],
}

# The stand-in for zoo-train: says who it is (human line and event line), writes its termination message, then
# does what ZOO_TEST_<RANK> says: ok, fail:<code>, stubborn (ignores SIGTERM, sleeps) or graceful (exit 79 on
# SIGTERM, as zoo-train does after its checkpoint).
CHILD = r"""
import json, os, signal, sys, time
rank, dev = os.environ["RANK_ID"], os.environ["DEVICE_ID"]
print(f"hello rank {rank} device {dev} physical {os.environ['ZOO_PHYSICAL_DEVICE_ID']}", flush=True)
if "MS_ROLE" in os.environ:
    print(f"dynamic node {os.environ['MS_NODE_ID']} of {os.environ['MS_WORKER_NUM']} "
          f"sched {os.environ['MS_SCHED_HOST']} role {os.environ['MS_ROLE']}", flush=True)
print(json.dumps({"event": "start", "ts": 1.0, "rank": int(rank)}), flush=True)
what = os.environ.get("ZOO_TEST_" + rank, "ok")
with open(os.environ["ZOO_TERMINATION_LOG"], "w") as f:
    json.dump({"status": "failed" if what.startswith("fail") else "succeeded", "rank": int(rank)}, f)
if what.startswith("fail:"):
    sys.exit(int(what.split(":")[1]))
if what == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    time.sleep(120)
if what == "graceful":
    def stop(*_):
        print("stopping at a step boundary", flush=True)
        sys.exit(79)
    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    time.sleep(120)
    sys.exit(1)
"""


def setup(tmp_path: Path, attempt: str = "2", **behaviour: str) -> dict[str, str]:
    table_dir = tmp_path / "ranktable"
    table_dir.mkdir()
    (table_dir / contract.RANKTABLE_FILE).write_text(json.dumps(TABLE))
    (table_dir / contract.ATTEMPT_FILE).write_text(attempt)
    env = {
        **os.environ,
        contract.ENV_RANK_TABLE_FILE: str(table_dir / contract.RANKTABLE_FILE),
        contract.ENV_HOST_IP: "10.0.0.1",
        "ASCEND_VISIBLE_DEVICES": "3,5",
        contract.ENV_RANK_SIZE: "4",
        contract.ENV_ATTEMPT: "2",
        contract.ENV_TERMINATION_LOG: str(tmp_path / "termination-log"),
        "ZOO_SERVER_KILL_GRACE": "1",
        "ZOO_RANKTABLE_TIMEOUT": "2",
    }
    env.update({f"ZOO_TEST_{rank}": what for rank, what in behaviour.items()})
    return env


def launcher(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zoo_workloads.server_launch", "--", sys.executable, "-c", CHILD],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_one_process_per_npu_with_logical_device_and_global_rank(tmp_path: Path) -> None:
    proc = launcher(setup(tmp_path))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    # NPUs 3 and 5 are logical 0 and 1 in this container, ranks 2 and 3 in the table.
    assert "[rank 2] hello rank 2 device 0 physical 3\n" in out, out
    assert "[rank 3] hello rank 3 device 1 physical 5\n" in out, out
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert sorted(e["rank"] for e in events) == [2, 3]  # event lines unprefixed, their rank field intact
    # The pod's termination message is the lowest rank's own.
    assert json.loads((tmp_path / "termination-log").read_text()) == {"status": "succeeded", "rank": 2}


def test_on_dra_the_processes_take_the_davinci_nodes_the_container_sees(tmp_path: Path) -> None:
    """No ASCEND_VISIBLE_DEVICES (MindCluster's DRA driver sets none): the NPUs are the /dev/davinci<N> nodes."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("davinci3", "davinci5", "davinci_manager"):
        (dev / name).touch()
    env = setup(tmp_path)
    del env["ASCEND_VISIBLE_DEVICES"]
    proc = launcher({**env, "ZOO_ASCEND_DEVICE_DIR": str(dev)})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "[rank 2] hello rank 2 device 0 physical 3\n" in out, out
    assert "[rank 3] hello rank 3 device 1 physical 5\n" in out, out


def test_the_first_failure_decides_the_exit_and_the_others_are_killed(tmp_path: Path) -> None:
    proc = launcher(setup(tmp_path, **{"2": "stubborn", "3": "fail:66"}))
    start = time.monotonic()
    out, _ = proc.communicate(timeout=60)
    # Exit class preserved: 66 (dataset missing, permanent), not the SIGKILL of the stubborn rank.
    assert proc.returncode == 66, out
    assert time.monotonic() - start < 30, "rank 2 was not killed after the grace"
    assert "rank 3 failed (exit 66): stopping ranks [2]" in out, out
    assert "rank 2 exited with 137" in out, out
    assert json.loads((tmp_path / "termination-log").read_text()) == {"status": "failed", "rank": 3}


def test_sigterm_reaches_every_process_and_the_stop_exit_is_kept(tmp_path: Path) -> None:
    proc = launcher(setup(tmp_path, **{"2": "graceful", "3": "graceful"}))
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while sum("ready" in line for line in seen) < 2:
        assert time.monotonic() < deadline, f"children never got ready: {seen}"
        seen.append(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    out = "".join(seen) + rest
    assert proc.returncode == contract.EXIT_STOPPED, out
    assert "[rank 2] stopping at a step boundary" in out and "[rank 3] stopping at a step boundary" in out, (
        out
    )


def test_a_table_of_another_attempt_starts_no_process(tmp_path: Path) -> None:
    proc = launcher(setup(tmp_path, attempt="1"))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == contract.EXIT_RETRYABLE, out
    assert "of attempt 2 (the table is of attempt 1)" in out and "hello" not in out, out


def test_plan_locals_and_exit_status() -> None:
    assert server_launch.plan_locals([("3", 5), ("2", 3)], [3, 5]) == [
        server_launch.Local(2, 0, 3),
        server_launch.Local(3, 1, 5),
    ]
    with pytest.raises(ConfigError, match="share rank ids"):
        server_launch.plan_locals([("2", 5), ("2", 3)], [3, 5])
    assert server_launch.exit_status(-9) == 137 and server_launch.exit_status(75) == 75
    assert server_launch.first_failure([(1, 0), (0, 75), (2, 137)]) == (0, 75)
    assert server_launch.first_failure([(1, 0)]) is None


def test_without_a_rank_table_it_says_what_it_needs() -> None:
    with pytest.raises(ConfigError, match="RANK_TABLE_FILE: required by zoo-server-launch"):
        server_launch.prepare({})


def dynamic_setup(tmp_path: Path, node_rank: str = "1", **behaviour: str) -> dict[str, str]:
    """A server pod of the dynamic launch (msrun style, no rank table): node 1 of two, 2 workers per node, holding
    physical NPUs 3 and 5, the scheduler at a name that resolves."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (contract.ENV_RANK_TABLE_FILE, contract.ENV_MS_NODE_ID, contract.ENV_RANK_ID)
    }
    env.update(
        {
            contract.ENV_MS_ROLE: contract.MS_ROLE_WORKER,
            contract.ENV_MS_SCHED_HOST: "localhost",
            contract.ENV_MS_SCHED_PORT: "8118",
            contract.ENV_MS_WORKER_NUM: "4",
            contract.ENV_NODE_RANK: node_rank,
            contract.ENV_LOCAL_WORKER_NUM: "2",
            "ASCEND_VISIBLE_DEVICES": "5,3",
            contract.ENV_RANK_SIZE: "4",
            contract.ENV_TERMINATION_LOG: str(tmp_path / "termination-log"),
            "ZOO_SERVER_KILL_GRACE": "1",
            "ZOO_RESOLVE_TIMEOUT": "5",
        }
    )
    env.update({f"ZOO_TEST_{rank}": what for rank, what in behaviour.items()})
    return env


def test_dynamic_launch_starts_local_workers_as_msrun_numbers_them(tmp_path: Path) -> None:
    proc = launcher(dynamic_setup(tmp_path))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    # node_rank 1 x 2 local workers: ranks 2 and 3, each its own dynamic-cluster node, on logical devices 0 and 1
    # (physical 3 and 5), the scheduler's name resolved once for all.
    assert "[rank 2] hello rank 2 device 0 physical 3\n" in out, out
    assert "[rank 3] hello rank 3 device 1 physical 5\n" in out, out
    assert "[rank 2] dynamic node 2 of 4 sched 127.0.0.1 role MS_WORKER\n" in out, out
    assert "[rank 3] dynamic node 3 of 4 sched 127.0.0.1 role MS_WORKER\n" in out, out
    assert json.loads((tmp_path / "termination-log").read_text()) == {"status": "succeeded", "rank": 2}


def test_dynamic_launch_keeps_the_first_failures_exit_class(tmp_path: Path) -> None:
    proc = launcher(dynamic_setup(tmp_path, **{"2": "stubborn", "3": "fail:75"}))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == contract.EXIT_RETRYABLE, out
    assert "rank 3 failed (exit 75): stopping ranks [2]" in out and "rank 2 exited with 137" in out, out
    assert json.loads((tmp_path / "termination-log").read_text()) == {"status": "failed", "rank": 3}


def test_dynamic_ranks_of_all_server_pods_are_global_and_consistent() -> None:
    """Two servers of 8 (the issue's 16-device job): every rank 0..15 once, contiguous per pod, each pod's logical
    devices 0..7 in the order of its physical NPUs (scrambled here, as on a real node)."""
    visible = {0: [7, 1, 3, 0, 2, 6, 4, 5], 1: [15, 9, 8, 10, 11, 14, 13, 12]}
    plans = {node: server_launch.plan_dynamic_locals(node, 8, ids) for node, ids in visible.items()}
    ranks = [x.rank for node in (0, 1) for x in plans[node]]
    assert ranks == list(range(16))
    for node, plan in plans.items():
        assert [x.device_id for x in plan] == list(range(8))
        assert [x.physical for x in plan] == sorted(visible[node])
        assert [x.rank for x in plan] == list(range(node * 8, node * 8 + 8))
    env = server_launch.process_env({contract.ENV_MS_ROLE: "MS_WORKER"}, plans[1][3], "/t")
    assert (env[contract.ENV_MS_NODE_ID], env[contract.ENV_RANK_ID], env[contract.ENV_DEVICE_ID]) == (
        "11",
        "11",
        "3",
    )
    # The rank-table launch sets no MS_NODE_ID.
    assert contract.ENV_MS_NODE_ID not in server_launch.process_env({}, plans[1][3], "/t")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            {contract.ENV_LOCAL_WORKER_NUM: "3", contract.ENV_NODE_RANK: "0"},
            "ZOO_LOCAL_WORKER_NUM: 3 processes (spec.device.perNode) but the container holds 2 NPUs [3, 5]",
        ),
        (
            {contract.ENV_NODE_RANK: "2"},
            "ZOO_NODE_RANK 2 x ZOO_LOCAL_WORKER_NUM 2: ranks beyond MS_WORKER_NUM 4",
        ),
        ({contract.ENV_NODE_RANK: ""}, "ZOO_NODE_RANK: required by zoo-server-launch in the dynamic launch"),
    ],
)
def test_dynamic_launch_refuses_what_cannot_be_a_server(
    tmp_path: Path, change: dict[str, str], needle: str
) -> None:
    with pytest.raises(ConfigError) as err:
        server_launch.prepare({**dynamic_setup(tmp_path), **change})
    assert needle in str(err.value)


def test_the_scheduler_role_is_not_served_here(tmp_path: Path) -> None:
    env = {**dynamic_setup(tmp_path), contract.ENV_MS_ROLE: contract.MS_ROLE_SCHEDULER}
    with pytest.raises(ConfigError, match="the scheduler runs under zoo-launch"):
        server_launch.dynamic_environment(env)
