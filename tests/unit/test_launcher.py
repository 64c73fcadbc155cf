"""zoo-launch: argument split, rank-table parsing, the wait loop and host resolution."""

import json
import socket
import threading
import time

import pytest

from zoo_workloads import launch
from zoo_workloads.errors import ConfigError, RankTableTimeout

RANKS = {"job-worker-0": {"rank_id": "0", "device_id": "3", "server_id": "10.0.0.1"},
         "job-worker-1": {"rank_id": "1", "device_id": "0", "server_id": "10.0.0.2"}}


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


def test_lookup_rank():
    text = json.dumps(RANKS)
    assert launch.lookup_rank(text, "job-worker-1") == ("1", "0")
    assert launch.lookup_rank(text, "job-worker-7") is None
    assert launch.lookup_rank("not json", "job-worker-0") is None


def test_wait_returns_once_a_thread_completes_the_table(tmp_path):
    table, ranks = tmp_path / "hccl.json", tmp_path / "ranks.json"
    table.write_text(json.dumps({"status": "initializing"}))
    ranks.write_text("{}")

    def complete() -> None:
        time.sleep(0.3)
        ranks.write_text(json.dumps(RANKS))
        table.write_text(json.dumps({"status": "completed"}))

    worker = threading.Thread(target=complete)
    worker.start()
    started = time.monotonic()
    assert launch.wait_for_rank(table, ranks, "job-worker-0", timeout=10, poll=0.05) == ("0", "3")
    worker.join()
    assert 0.25 < time.monotonic() - started < 5


def test_wait_times_out(tmp_path):
    table = tmp_path / "hccl.json"
    table.write_text(json.dumps({"status": "initializing"}))
    with pytest.raises(RankTableTimeout, match="job-worker-0"):
        launch.wait_for_rank(table, tmp_path / "ranks.json", "job-worker-0", timeout=0.2, poll=0.05)


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
    table, ranks = tmp_path / "hccl.json", tmp_path / "ranks.json"
    table.write_text(json.dumps({"status": "completed"}))
    ranks.write_text(json.dumps(RANKS))
    env = {"RANK_TABLE_FILE": str(table), "ZOO_RANKS_FILE": str(ranks), "POD_NAME": "job-worker-1"}
    assert launch.prepare_environment(env) == {"RANK_ID": "1", "DEVICE_ID": "0"}
    assert launch.prepare_environment({"MS_ROLE": "MS_WORKER", "MS_SCHED_HOST": "localhost"}) == {
        "MS_SCHED_HOST": "127.0.0.1"
    }
    assert launch.prepare_environment({}) == {}
    with pytest.raises(ConfigError, match="POD_NAME"):
        launch.prepare_environment({"RANK_TABLE_FILE": str(table), "ZOO_RANKS_FILE": str(ranks)})


def test_main_exits_75_and_writes_termination_on_timeout(tmp_path, monkeypatch):
    term = tmp_path / "term"
    (tmp_path / "hccl.json").write_text("{}")
    for key, value in {"RANK_TABLE_FILE": str(tmp_path / "hccl.json"), "ZOO_RANKS_FILE": str(tmp_path / "r.json"),
                       "POD_NAME": "p", "ZOO_RANKTABLE_TIMEOUT": "0.1", "ZOO_TERMINATION_LOG": str(term)}.items():
        monkeypatch.setenv(key, value)
    assert launch.main(["--", "true"]) == 75
    assert json.loads(term.read_text())["reason"] == "RankTableTimeout"


def test_launcher_execs_the_command_with_the_rank_exported(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "hccl.json").write_text(json.dumps({"status": "completed"}))
    (tmp_path / "ranks.json").write_text(json.dumps(RANKS))
    env = {"PATH": "/usr/bin:/bin", "RANK_TABLE_FILE": str(tmp_path / "hccl.json"),
           "ZOO_RANKS_FILE": str(tmp_path / "ranks.json"), "POD_NAME": "job-worker-0",
           "ZOO_TERMINATION_LOG": str(tmp_path / "term")}
    show = "import os; print(os.environ['RANK_ID'], os.environ['DEVICE_ID'], os.getpid())"
    proc = subprocess.run([str(Path(sys.executable).parent / "zoo-launch"), "--", sys.executable, "-c", show],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].split()[:2] == ["0", "3"]
    dynamic = {"PATH": "/usr/bin:/bin", "MS_ROLE": "MS_WORKER", "MS_SCHED_HOST": "localhost",
               "ZOO_TERMINATION_LOG": str(tmp_path / "term")}
    proc = subprocess.run([str(Path(sys.executable).parent / "zoo-launch"), "--", sys.executable, "-c",
                           "import os; print(os.environ['MS_SCHED_HOST'])"],
                          capture_output=True, text=True, env=dynamic, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "127.0.0.1"


def test_a_bad_timeout_is_named_never_echoed() -> None:
    """Issue 11: an env value may come from a Secret; the error names the variable, not the value."""
    with pytest.raises(ConfigError) as info:
        launch.prepare_environment({"MS_ROLE": "MS_WORKER", "MS_SCHED_HOST": "h", "ZOO_RESOLVE_TIMEOUT": "s3cr3t-value"})
    assert "ZOO_RESOLVE_TIMEOUT" in str(info.value) and "s3cr3t" not in str(info.value)
