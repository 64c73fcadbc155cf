"""zoo-launch restarts a crashed training process inside its pod (issue 23): which exits are restarted, the
bound, the `process_restart` event, SIGTERM passed on without a restart, and no orphan when the launcher dies.
Real child processes (small Python scripts), no mocks."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from zoo_workloads import contract, launch
from zoo_workloads.errors import ConfigError


@pytest.mark.parametrize(
    ("code", "restarts", "limit", "stopping", "expected"),
    [
        (-signal.SIGKILL, 0, 3, False, True),  # OOM killer, a fault
        (-signal.SIGSEGV, 0, 3, False, True),
        (contract.EXIT_RETRYABLE, 2, 3, False, True),  # a peer lost: the survivors of a dead rank
        (contract.EXIT_UNEXPECTED, 0, 3, False, True),  # MindSpore's scheduler ends with 1 when a worker dies
        (contract.EXIT_RETRYABLE, 3, 3, False, False),  # the bound is spent: the pod fails, the gang restarts
        (contract.EXIT_OK, 0, 3, False, False),
        (contract.EXIT_CONFIG, 0, 3, False, False),  # permanent: it would fail the same way again
        (contract.EXIT_DATASET_MISSING, 0, 3, False, False),
        (contract.EXIT_STOPPED, 0, 3, False, False),  # a graceful stop: the pod is going away
        (contract.EXIT_INTERRUPTED, 0, 3, False, False),
        (-signal.SIGTERM, 0, 3, False, False),
        (-signal.SIGKILL, 0, 3, True, False),  # zoo-launch itself was asked to stop
        (-signal.SIGKILL, 0, 0, False, False),
    ],
)
def test_which_exits_restart_in_place(
    code: int, restarts: int, limit: int, stopping: bool, expected: bool
) -> None:
    assert launch.restart_in_place(code, restarts, limit, stopping) is expected


def test_restart_bound_setting() -> None:
    assert launch.process_restarts({}) == contract.DEFAULT_PROCESS_RESTARTS
    assert launch.process_restarts({contract.ENV_PROCESS_RESTARTS: "0"}) == 0
    for bad in ("-1", "two", "101", "1.5"):
        with pytest.raises(ConfigError, match=contract.ENV_PROCESS_RESTARTS):
            launch.process_restarts({contract.ENV_PROCESS_RESTARTS: bad})
    assert launch.exit_status(-signal.SIGKILL) == 137 and launch.exit_status(75) == 75


# Each run appends a line to a file and ends the way the next code in CODES says (K = SIGKILL itself).
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    runs, codes = sys.argv[1], sys.argv[2].split(",")
    with open(runs, "a") as f:
        f.write("run\\n")
    n = sum(1 for _ in open(runs))
    code = codes[min(n, len(codes)) - 1]
    if code == "K":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.exit(int(code))
    """
)


@pytest.fixture()
def restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def _supervise(tmp_path: Path, codes: str, limit: int) -> tuple[int, int, list[dict]]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    runs = tmp_path / "runs"
    out = io.StringIO()
    code = launch.supervise([sys.executable, str(script), str(runs), codes], limit, out=out)
    events = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return code, len(runs.read_text().splitlines()), events


def test_a_killed_and_then_a_retryable_child_are_restarted_until_it_succeeds(
    tmp_path, restore_signals
) -> None:
    code, runs, events = _supervise(tmp_path, "K,75,0", limit=3)
    assert (code, runs) == (0, 3)
    assert [(e["event"], e["code"], e["restart"], e["limit"]) for e in events] == [
        (contract.EVENT_PROCESS_RESTART, 137, 1, 3),
        (contract.EVENT_PROCESS_RESTART, 75, 2, 3),
    ]


def test_the_bound_ends_in_the_childs_exit_code(tmp_path, restore_signals) -> None:
    code, runs, events = _supervise(tmp_path, "K,K,K", limit=1)
    assert (code, runs, len(events)) == (137, 2, 1)


def test_a_permanent_failure_is_not_restarted(tmp_path, restore_signals) -> None:
    assert _supervise(tmp_path, "64", limit=3) == (64, 1, [])


SUPERVISOR = textwrap.dedent(
    """
    import sys
    from zoo_workloads import launch
    sys.exit(launch.supervise([sys.executable, "-c", sys.argv[1]], 3))
    """
)


def _wait(predicate, timeout: float, explain) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, explain()
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def test_sigterm_reaches_the_child_and_no_restart_follows(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    child = (
        "import os, signal, sys, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(79))\n"
        "time.sleep(120)\n"
    )
    sup = subprocess.Popen([sys.executable, "-c", SUPERVISOR, child], stdout=subprocess.PIPE, text=True)
    _wait(lambda: pid_file.exists() and pid_file.read_text(), 60, lambda: "the child never started")
    sup.send_signal(signal.SIGTERM)
    assert sup.wait(timeout=60) == contract.EXIT_STOPPED
    assert contract.EVENT_PROCESS_RESTART not in (sup.stdout.read() if sup.stdout else "")


def test_a_killed_launcher_leaves_no_trainer_behind(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    child = f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    sup = subprocess.Popen([sys.executable, "-c", SUPERVISOR, child])
    _wait(lambda: pid_file.exists() and pid_file.read_text(), 60, lambda: "the child never started")
    trainer = int(pid_file.read_text())
    sup.kill()
    sup.wait(timeout=60)
    _wait(lambda: not _alive(trainer), 30, lambda: f"trainer {trainer} outlived its killed launcher")


def test_the_first_casualty_of_a_dynamic_cluster_waits_for_the_old_cluster_to_end() -> None:
    gang = {contract.ENV_MS_ROLE: contract.MS_ROLE_WORKER, contract.ENV_MS_WORKER_NUM: "2"}
    assert (
        launch.restart_delay(-signal.SIGKILL, gang) == launch.DEFAULT_MS_NODE_TIMEOUT + launch.REJOIN_MARGIN
    )
    assert (
        launch.restart_delay(-signal.SIGKILL, {**gang, "MS_NODE_TIMEOUT": "12"}) == 12 + launch.REJOIN_MARGIN
    )
    assert launch.restart_delay(contract.EXIT_RETRYABLE, gang) == 0  # a survivor: the old cluster is gone
    assert launch.restart_delay(-signal.SIGKILL, {**gang, contract.ENV_MS_WORKER_NUM: "1"}) == 0
    assert launch.restart_delay(-signal.SIGKILL, {}) == 0  # one process, nothing to wait for
