"""Local mode: run a ZooTrainingJob as processes on this machine, no cluster, for a quick try.

The processes get what the pods would get: the container command and environment that `zoo_operator.render`
builds for each pod of the job (zoo-launch -> zoo-train, MindSpore's dynamic-cluster variables MS_ROLE,
MS_SCHED_HOST, MS_SCHED_PORT, MS_WORKER_NUM, MS_NODE_ID for more than one rank, with a scheduler process first;
one rank runs standalone, without them),
with the pod paths /zoo/data and /zoo/checkpoint mapped to local folders and the scheduler on 127.0.0.1.
MindSpore's dynamic cluster: https://www.mindspore.cn/docs/en/master/model_train/parallel/dynamic_cluster.html
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_operator import conditions as c
from zoo_operator import render
from zoo_operator.client.api import build_job
from zoo_operator.settings import Settings
from zoo_operator.spec import InvalidSpec, parse
from zoo_workloads import contract

Obj = dict[str, Any]


@dataclass(frozen=True)
class LocalProcess:
    """One process of a local run: the role (worker or scheduler), rank (None: the scheduler), argv, env."""

    role: str
    rank: int | None
    argv: list[str]
    env: dict[str, str]


@dataclass
class LocalRun:
    """The outcome of `run_local`: every process's exit code and log file, and the output folder."""

    output_dir: Path
    exit_codes: dict[str, int] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """Whether every process exited 0."""
        return bool(self.exit_codes) and all(code == 0 for code in self.exit_codes.values())


def _local_path(value: str, data_dir: Path, output_dir: Path) -> str:
    for pod_path, local in ((c.DATA_DIR, data_dir), (c.CHECKPOINT_DIR, output_dir)):
        if value == pod_path or value.startswith(pod_path + "/"):
            return str(local) + value[len(pod_path) :]
        value = value.replace(f"={pod_path}/", f"={local}/")  # --set resume=/zoo/checkpoint/...
    return value


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now (for the MindSpore scheduler)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plan(
    job: Mapping[str, Any],
    data_dir: str | Path,
    output_dir: str | Path,
    *,
    port: int | None = None,
    settings: Settings | None = None,
) -> list[LocalProcess]:
    """The processes of a local run of `job` (validated with the operator's spec.parse): scheduler first, then
    ranks. `data_dir` stands for the dataset volume (spec.dataset paths are under it), `output_dir` for the
    checkpoint volume. Pure: nothing is started."""
    body = build_job(body=job)
    body["metadata"].setdefault("uid", "local")
    spec = parse(body, settings or Settings())
    if spec.launch != "dynamic":
        # The rank-table launch waits for a table only the operator writes, from NPUs only a cluster has: refuse
        # at once rather than start processes that wait for /etc/zoo/ranktable until the timeout.
        problem = (
            f"spec.launch: local mode runs the dynamic launch only (got {spec.launch!r}, device "
            f"{spec.device_type}); a rank-table launch needs a "
            "cluster's NPUs and rank table: submit it to a cluster, or try it here with spec.device.type CPU"
        )
        raise InvalidSpec([problem])
    if spec.pods_per != contract.PODS_PER_DEVICE:
        # A server pod starts one process per NPU its container was given: a local machine gives it none.
        problem = (
            f"spec.device.podsPer: local mode runs one process per rank (podsPer {contract.PODS_PER_DEVICE!r}, "
            f"got {spec.pods_per!r}); a server pod needs a node's NPUs: submit it to a cluster"
        )
        raise InvalidSpec([problem])
    data, out = Path(data_dir).resolve(), Path(output_dir).resolve()
    sched_port = str(port or free_port())
    procs = []
    for pod in render.pods(spec, 0):
        labels = pod["metadata"].get("labels") or {}
        if spec.replicas == 1 and labels.get(c.LABEL_ROLE) == c.ROLE_SCHEDULER:
            continue  # one rank runs standalone: no MindSpore scheduler, no MS_* variables
        container = pod["spec"]["containers"][0]
        env = {e["name"]: str(e["value"]) for e in container.get("env") or [] if "value" in e}
        if spec.replicas == 1:
            env = {k: v for k, v in env.items() if not k.startswith("MS_")}
        env = {k: _local_path(v, data, out) for k, v in env.items()}
        if contract.ENV_MS_ROLE in env:
            env.update(MS_SCHED_HOST="127.0.0.1", MS_SCHED_PORT=sched_port)
        # One host, no pod names or IPs: no gang fault channel (a crash waits for MindSpore's timeout).
        env.pop(contract.ENV_GANG_HUB, None)
        env[contract.ENV_TERMINATION_LOG] = str(out / f"termination-{pod['metadata']['name']}.log")
        argv = [
            _local_path(a, data, out) for a in [*container.get("command", []), *container.get("args", [])]
        ]
        rank = labels.get(c.LABEL_RANK)
        procs.append(
            LocalProcess(
                labels.get(c.LABEL_ROLE, c.ROLE_WORKER), None if rank is None else int(rank), argv, env
            )
        )
    return procs


def run_local(
    job: Mapping[str, Any],
    data_dir: str | Path,
    output_dir: str | Path,
    *,
    timeout: float = 3600.0,
    echo: bool = True,
    settings: Settings | None = None,
) -> LocalRun:
    """Run `job` here: every process of `plan`, logs in output_dir/<role>-<rank>.log (rank 0 echoed to stdout
    when `echo`); waits for all, kills the rest when one fails or `timeout` passes."""
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = LocalRun(out)
    running: dict[str, subprocess.Popen[bytes]] = {}
    bindir = str(Path(sys.executable).parent)  # zoo-launch / zoo-train of this environment
    try:
        for proc in plan(job, data_dir, out, settings=settings):
            key = proc.role if proc.rank is None else f"rank-{proc.rank}"
            log = out / f"{key}.log"
            result.logs[key] = log
            env = {**os.environ, **proc.env, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
            with log.open("wb") as fh:
                running[key] = subprocess.Popen(proc.argv, env=env, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while running:
            for key, popen in list(running.items()):
                code = popen.poll()
                if code is not None:
                    result.exit_codes[key] = code
                    del running[key]
                    if code != 0:
                        deadline = 0.0
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        for key, popen in running.items():
            popen.kill()
            result.exit_codes[key] = popen.wait()
    if echo and "rank-0" in result.logs:
        sys.stdout.write(result.logs["rank-0"].read_text(errors="replace"))
    return result


def argv_of(procs: Sequence[LocalProcess]) -> list[list[str]]:
    """The command lines of a plan (for printing what a local run would do)."""
    return [p.argv for p in procs]
