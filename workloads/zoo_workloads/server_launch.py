"""zoo-server-launch: one pod per server (spec.device.podsPer server, issue 21), one training process per NPU.

The pod holds all perNode NPUs of its server; the device plugin sets ASCEND_VISIBLE_DEVICES to their physical ids
and CANN numbers them 0..n-1 inside the container (../shared/ASCEND.md). As the ModelZoo's
`run_distribute_train.sh` (`for i in 0..7: DEVICE_ID=$i RANK_ID=$((rank_start + i)) python train.py &`) and
MindCluster's one-pod-per-server samples do, this launcher waits for the completed rank table of its attempt
(zoo_workloads.launch.wait_for_rank, per NPU), then starts the command once per NPU with its logical DEVICE_ID and
the table's global RANK_ID, and:
- prints every process's output on the pod's log: JSON event lines unchanged (their `rank` field names the rank),
  other lines prefixed `[rank N] ` (contract.RANK_LINE_PREFIX), so the operator and `kubectl ztj logs --rank`
  still tell ranks apart;
- forwards SIGTERM and SIGINT to every process (each finishes its step and checkpoints, exit 79);
- when a process fails, stops the others (SIGTERM, then SIGKILL after ZOO_SERVER_KILL_GRACE seconds: they would
  otherwise hang in a collective until HCCL's timeout) and exits with the FIRST failing process's exit code, so
  the operator sees that rank's exit class; the pod's termination message is that process's own;
- on success exits 0 with the lowest rank's termination message (rank 0's carries the result).
Dynamic launch (spec.launch dynamic, MS_ROLE=MS_WORKER: no rank table, as on MindCluster's DRA nodes): the pod is
one node of msrun, which starts `--local_worker_num` workers per node with `--node_rank` (MindSpore docs, "msrun
Launching", r2.6-r2.9: tutorials/source_en/parallel/msrun_launcher.md; MindSpore 2.10's own msrun,
mindspore/parallel/cluster/process_entity/_api.py `_start_single_worker`, `_get_node_id_and_log_path`): local
worker i gets MS_ROLE=MS_WORKER, MS_WORKER_NUM (all workers of the job), MS_SCHED_HOST/PORT, MS_NODE_ID and
RANK_ID = node_rank * local_worker_num + i, and DEVICE_ID = i. Here node_rank and local_worker_num come from the pod
(ZOO_NODE_RANK, ZOO_LOCAL_WORKER_NUM = the server index and perNode), MS_SCHED_HOST is resolved once for all, and
DEVICE_ID is the logical id of the i-th NPU the container sees (the same i: CANN numbers them 0..n-1). Everything
after the start (log prefixes, signals, the first failure's exit, termination messages) is the same code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from zoo_workloads import contract, launch
from zoo_workloads.errors import ConfigError, ZooError, classify
from zoo_workloads.events import failure_message, write_termination

DEFAULT_KILL_GRACE = 15.0
"""Seconds the other processes get after a peer failed, between SIGTERM and SIGKILL: enough to leave a step, far
below HCCL's connect timeout they would otherwise wait out."""
POLL_SECONDS = 0.2


@dataclasses.dataclass(frozen=True)
class Local:
    """One training process of the pod: its global rank, logical and physical NPU."""

    rank: int
    device_id: int
    physical: int


def plan_locals(ranks: Sequence[tuple[str, int]], visible: Sequence[int]) -> list[Local]:
    """The processes to start, by rank: (RANK_ID, physical id) pairs from the table, each NPU's logical id its
    index among the visible devices. ConfigError when the table's ranks are not whole numbers or repeat."""
    out = []
    for rank_id, physical in ranks:
        if not str(rank_id).isdigit():
            raise ConfigError(f"rank table: rank_id {rank_id!r} of NPU {physical} is not a number")
        out.append(Local(int(rank_id), launch.logical_device(physical, visible), physical))
    if len({x.rank for x in out}) != len(out):
        raise ConfigError(f"rank table: the NPUs {sorted(visible)} of this server share rank ids")
    return sorted(out, key=lambda x: x.rank)


def plan_dynamic_locals(node_rank: int, local_worker_num: int, visible: Sequence[int]) -> list[Local]:
    """The processes of a dynamic-launch server pod, as msrun numbers them: local worker i is the dynamic cluster's
    node and rank node_rank * local_worker_num + i, on logical device i (the i-th of the container's NPUs, by
    physical id). ConfigError when the container does not hold exactly local_worker_num NPUs (one process per
    NPU: more would share a device, fewer would leave the cluster waiting for workers that never register)."""
    ordered = sorted(visible)
    if len(ordered) != local_worker_num:
        raise ConfigError(
            f"{contract.ENV_LOCAL_WORKER_NUM}: {local_worker_num} processes (spec.device.perNode) but the "
            f"container holds {len(ordered)} NPUs {ordered}"
        )
    return [Local(node_rank * local_worker_num + i, i, physical) for i, physical in enumerate(ordered)]


def wait_for_ranks(
    rank_table: Path,
    server: str,
    physical: Sequence[int],
    timeout: float,
    rank_size: int | None,
    attempt: str,
    clock: Callable[[], float] = time.monotonic,
) -> list[tuple[str, int]]:
    """(RANK_ID, physical id) of every NPU of this pod in the completed table of `attempt`, within `timeout` s in
    all. Each NPU is waited for with zoo-launch's own check (attempt marker, completed table, the NPU listed), so
    a stale table of another attempt never counts."""
    deadline = clock() + timeout
    return [
        launch.wait_for_rank(
            rank_table, server, [p], max(0.0, deadline - clock()), rank_size, clock=clock, attempt=attempt
        )
        for p in sorted(physical)
    ]


def process_env(env: dict[str, str], local: Local, termination: str) -> dict[str, str]:
    """The environment of one process: the pod's, its RANK_ID and logical DEVICE_ID, and its own termination file
    (the pod's is written by the launcher, from the process that decides how the pod ended)."""
    out = {
        **env,
        contract.ENV_RANK_ID: str(local.rank),
        contract.ENV_DEVICE_ID: str(local.device_id),
        "ZOO_PHYSICAL_DEVICE_ID": str(local.physical),
        contract.ENV_TERMINATION_LOG: termination,
    }
    if env.get(contract.ENV_MS_ROLE):
        # Dynamic launch: each process is a node of its own in MindSpore's cluster, its node id its rank (msrun).
        out[contract.ENV_MS_NODE_ID] = str(local.rank)
    return out


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it: 128 + signal for one killed by a signal."""
    return 128 - returncode if returncode < 0 else returncode


def first_failure(ended: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """(rank, exit status) of the first process, in order of ending, that did not exit 0; None if none."""
    return next(((rank, code) for rank, code in ended if code != 0), None)


def _pump(stream: IO[str], rank: int, out: IO[str], lock: threading.Lock) -> None:
    for line in stream:
        text = contract.rank_line(rank, line.rstrip("\n"))
        with lock:
            out.write(text + "\n")
            out.flush()


class Server:
    """The running processes of one server pod."""

    def __init__(self, command: Sequence[str], env: dict[str, str], locals_: Sequence[Local]) -> None:
        self.command = list(command)
        self.env = env
        self.locals = list(locals_)
        self.dir = tempfile.mkdtemp(prefix="zoo-server-")
        self.lock = threading.Lock()
        self.procs: dict[int, subprocess.Popen[str]] = {}
        self.pumps: list[threading.Thread] = []
        self.stopping = False  # a forwarded SIGTERM/SIGINT: every process checkpoints and exits on its own

    def termination_file(self, rank: int) -> str:
        """Where process `rank` writes its termination message."""
        return os.path.join(self.dir, f"rank-{rank}.termination")

    def start(self) -> None:
        """Start one process per NPU, each with its output pumped onto the pod's log."""
        for local in self.locals:
            proc = subprocess.Popen(
                self.command,
                env=process_env(self.env, local, self.termination_file(local.rank)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            self.procs[local.rank] = proc
            assert proc.stdout is not None
            pump = threading.Thread(target=_pump, args=(proc.stdout, local.rank, sys.stdout, self.lock))
            pump.start()
            self.pumps.append(pump)
            self.say(
                f"rank {local.rank}: DEVICE_ID={local.device_id} (physical NPU {local.physical}) pid {proc.pid}"
            )

    def say(self, text: str) -> None:
        """A line of the launcher's own (no rank prefix)."""
        with self.lock:
            print(f"{contract.SERVER_LAUNCH}: {text}", flush=True)

    def forward(self, signum: int, _frame: Any = None) -> None:
        """Signal handler: pass the signal to every process still running."""
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    def wait(self, grace: float) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
        """Wait for every process; after the first failure stop the rest. (ended in order, first failure)."""
        ended: list[tuple[int, int]] = []
        running = dict(self.procs)
        kill_at: float | None = None
        while running:
            for rank, proc in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[rank]
                ended.append((rank, exit_status(code)))
                self.say(f"rank {rank} exited with {exit_status(code)}")
            failed = first_failure(ended)
            if failed is not None and kill_at is None and running and not self.stopping:
                self.say(f"rank {failed[0]} failed (exit {failed[1]}): stopping ranks {sorted(running)}")
                for proc in running.values():
                    proc.send_signal(signal.SIGTERM)
                kill_at = time.monotonic() + grace
            if kill_at is not None and time.monotonic() >= kill_at:
                for proc in running.values():
                    proc.kill()
                kill_at = float("inf")
            time.sleep(POLL_SECONDS)
        for pump in self.pumps:
            pump.join(timeout=10)
        return ended, first_failure(ended)

    def termination(self, failed: tuple[int, int] | None) -> dict[str, Any] | None:
        """The pod's termination message: the first failing process's own, else the lowest rank's."""
        rank = failed[0] if failed else min(self.procs)
        try:
            text = Path(self.termination_file(rank)).read_text(encoding="utf-8")
            message = json.loads(text)
        except (OSError, ValueError):
            message = None
        if isinstance(message, dict):
            return message
        if failed is None:
            return None
        return {
            "status": "failed",
            "reason": "RankFailed",
            "message": f"rank {failed[0]} of this server exited with {failed[1]}",
            "retryable": contract.exit_class(failed[1]) != "permanent",
        }


def _whole(env: dict[str, str], name: str) -> int:
    raw = env.get(name, "")
    if not raw.isdigit():
        raise ConfigError(
            f"{name}: required by {contract.SERVER_LAUNCH} in the dynamic launch, a whole number "
            f"(got {raw!r})"
        )
    return int(raw)


def dynamic_environment(env: dict[str, str]) -> dict[str, str]:
    """What a dynamic-launch server pod adds for all its processes: MS_SCHED_HOST resolved to the scheduler's IP
    (with zoo-launch's retries: the scheduler's DNS name may not exist yet). {} in the rank-table launch."""
    role = env.get(contract.ENV_MS_ROLE)
    if not role:
        return {}
    if role != contract.MS_ROLE_WORKER:
        raise ConfigError(
            f"{contract.ENV_MS_ROLE}: {contract.SERVER_LAUNCH} starts workers ({contract.MS_ROLE_WORKER}), got "
            f"{role!r} (the scheduler runs under zoo-launch)"
        )
    host = env.get(contract.ENV_MS_SCHED_HOST, "")
    if not host:
        raise ConfigError(
            f"{contract.ENV_MS_SCHED_HOST}: required with {contract.ENV_MS_ROLE} (the scheduler's host)"
        )
    timeout = launch.float_env(env, "ZOO_RESOLVE_TIMEOUT", launch.DEFAULT_RESOLVE_TIMEOUT)
    return {contract.ENV_MS_SCHED_HOST: launch.resolve_host(host, timeout)}


def prepare_dynamic(env: dict[str, str]) -> list[Local]:
    """The processes of a dynamic-launch server pod: ZOO_NODE_RANK, ZOO_LOCAL_WORKER_NUM and MS_WORKER_NUM from
    the pod, the NPUs the container sees (launch.container_npus: device plugin or DRA)."""
    node_rank = _whole(env, contract.ENV_NODE_RANK)
    local = _whole(env, contract.ENV_LOCAL_WORKER_NUM)
    total = _whole(env, contract.ENV_MS_WORKER_NUM)
    if local < 1 or (node_rank + 1) * local > total:
        raise ConfigError(
            f"{contract.ENV_NODE_RANK} {node_rank} x {contract.ENV_LOCAL_WORKER_NUM} {local}: ranks beyond "
            f"{contract.ENV_MS_WORKER_NUM} {total}"
        )
    return plan_dynamic_locals(node_rank, local, launch.container_npus(env))


def prepare(env: dict[str, str]) -> list[Local]:
    """The processes of this pod: from the rank table of its attempt (RANK_TABLE_FILE, the container's NPUs), or in
    the dynamic launch (MS_ROLE set) as msrun numbers them (prepare_dynamic)."""
    if env.get(contract.ENV_MS_ROLE):
        return prepare_dynamic(env)
    if not env.get(contract.ENV_RANK_TABLE_FILE):
        raise ConfigError(
            f"{contract.ENV_RANK_TABLE_FILE}: required by {contract.SERVER_LAUNCH} without {contract.ENV_MS_ROLE} "
            "(spec.device.podsPer server runs the rank-table or the dynamic launch)"
        )
    server, physical = launch.ranktable_identity(env)
    visible = launch.visible_npus(env, physical)
    size = env.get(contract.ENV_RANK_SIZE, "")
    ranks = wait_for_ranks(
        Path(env[contract.ENV_RANK_TABLE_FILE]),
        server,
        physical,
        launch.float_env(env, "ZOO_RANKTABLE_TIMEOUT", launch.DEFAULT_RANKTABLE_TIMEOUT),
        int(size) if size.isdigit() else None,
        env.get(contract.ENV_ATTEMPT, ""),
    )
    return plan_locals(ranks, visible)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of zoo-server-launch: the exit status of the first failing process, else 0."""
    args = sys.argv[1:] if argv is None else argv
    try:
        command = launch.split_command(args)
        os.environ.update(launch.cann_environment(dict(os.environ)))
        env = dict(os.environ)
        env.update(dynamic_environment(env))
        locals_ = prepare(env)
        grace = launch.float_env(env, "ZOO_SERVER_KILL_GRACE", DEFAULT_KILL_GRACE)
    except (ZooError, OSError) as exc:
        failure = classify(exc)
        print(f"{contract.SERVER_LAUNCH}: {failure.message}", file=sys.stderr, flush=True)
        write_termination(failure_message(failure))
        return failure.exit_code
    server = Server(command, env, locals_)
    signal.signal(signal.SIGTERM, server.forward)
    signal.signal(signal.SIGINT, server.forward)
    try:
        server.start()
    except OSError as err:
        server.say(f"cannot run {command[0]!r}: {err.strerror}")
        server.forward(signal.SIGKILL)
        return contract.EXIT_CONFIG
    _ended, failed = server.wait(grace)
    message = server.termination(failed)
    if message is not None:
        write_termination(message)
    return failed[1] if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
