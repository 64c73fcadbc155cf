"""zoo-launch: prepare a pod's environment for distributed MindSpore, then exec the training command.

ranktable launch (RANK_TABLE_FILE set): wait until hccl.json says `"status": "completed"` and lists this pod's
NPU (its node IP HOST_IP and physical id from ASCEND_VISIBLE_DEVICES, or the /dev/davinci<N> nodes on DRA),
export RANK_ID and the LOGICAL DEVICE_ID
(the NPU's index among the container's visible devices: 0 in a one-NPU pod; hccl.json keeps the physical id). dynamic launch (MS_ROLE set): resolve
MS_SCHED_HOST, with retries since workers may start before the scheduler's DNS name exists, and export the IP.
Then run the command after `--`: supervised (issue 23), zoo-launch starts it as a child and restarts it inside
the running pod when it crashes in a retryable way (restart_in_place), up to ZOO_PROCESS_RESTARTS times; the
restarted process resumes from the newest complete (step) checkpoint. The pod, its IP, the rank table and the
attempt marker stay as they are, so the environment prepared once holds for every restart. With
ZOO_PROCESS_RESTARTS=0 it os.execvp's the command as before. In a gang (ZOO_GANG_HUB set) the supervisors share
a fault channel (gangchannel.py): one rank's crash makes every supervisor kill and restart its own process at
once, instead of waiting for MindSpore's node timeout or HCCL's collective timeout. No MindSpore import here:
this runs before anything heavy.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoo_workloads import contract, lastwords
from zoo_workloads.errors import EXIT_CONFIG, ConfigError, RankTableTimeout, ZooError, classify
from zoo_workloads.events import failure_message, format_event, write_termination

DEFAULT_RANKTABLE_TIMEOUT = 600.0  # ConfigMap volume updates take 60-90 s on real nodes
DEFAULT_RESOLVE_TIMEOUT = 300.0
POLL_SECONDS = 1.0
# Next to hccl.json: the attempt whose pods the table lists (contracts.md).
ATTEMPT_FILE = contract.ATTEMPT_FILE


def split_command(argv: Sequence[str]) -> list[str]:
    """The command after `--`; ConfigError when there is none."""
    args = list(argv)
    if "--" not in args:
        raise ConfigError("usage: zoo-launch -- COMMAND [ARGS...] (missing `--`)")
    command = args[args.index("--") + 1 :]
    if not command:
        raise ConfigError("usage: zoo-launch -- COMMAND [ARGS...] (no command after `--`)")
    return command


def rank_table_completed(text: str) -> bool:
    """Whether an hccl.json text is a complete rank table (`"status": "completed"`); False while partial."""
    table = _table(text)
    return table is not None and table.get("status") == "completed"


def _table(text: str) -> dict[str, Any] | None:
    try:
        table = json.loads(text)
    except ValueError:
        return None  # the kubelet may be mid-way through updating the mounted file
    return table if isinstance(table, dict) else None


def visible_devices(text: str) -> list[int]:
    """Physical NPU ids from ASCEND_VISIBLE_DEVICES ("3", "0,1", "0-3"); ConfigError when malformed or empty.

    Set by the Ascend device plugin on the container (ascend-device-plugin `pkg/common/common.go`,
    SetAscendRuntimeEnv); Ascend Docker Runtime then mounts only those /dev/davinciN into it.
    """
    if not text.strip():
        raise ConfigError("ASCEND_VISIBLE_DEVICES is empty: the device plugin gave this container no NPU")
    ids: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ConfigError(f"ASCEND_VISIBLE_DEVICES: {text!r} is not a list of NPU ids like 0,1 or 0-3")
        ids.update(range(int(lo), int(hi if dash else lo) + 1))
    return sorted(ids)


DEVICE_DIR_ENV = "ZOO_ASCEND_DEVICE_DIR"
"""Where the container's NPU device nodes are: /dev on a real node; the local cluster names its fake directory."""


def device_node_ids(directory: Path) -> list[int]:
    """Physical NPU ids of the /dev/davinci<N> nodes in `directory` (not davinci_manager and the other shared nodes).

    What a container holding NPUs through MindCluster's DRA driver has to go on: its CDI spec maps host
    /dev/davinci<N> to the same path in the container and sets no ASCEND_VISIBLE_DEVICES
    (Ascend/mind-cluster component/ascend-common/cdi/devnode.go GeneratePerDeviceNodes, spec.go BuildSpec). The
    number is the physical id, as CANN's rank-table guide says (`ls /dev/davinci*` gives device_id).
    """
    try:
        names = [p.name for p in directory.iterdir()]
    except OSError:
        return []
    return sorted(
        int(n.removeprefix("davinci")) for n in names if n.startswith("davinci") and n[7:].isdigit()
    )


def container_npus(env: dict[str, str]) -> list[int]:
    """The physical ids of this container's NPUs: ASCEND_VISIBLE_DEVICES where the device plugin set it, else the
    davinci<N> nodes the container sees (DRA). ConfigError when there are none."""
    if "ASCEND_VISIBLE_DEVICES" in env:  # set, even empty: the device plugin's word
        return visible_devices(env["ASCEND_VISIBLE_DEVICES"])
    directory = env.get(DEVICE_DIR_ENV) or "/dev"
    ids = device_node_ids(Path(directory))
    if not ids:
        raise ConfigError(
            f"no NPU: ASCEND_VISIBLE_DEVICES is not set and {directory} has no davinci<N> device node "
            "(does the pod request huawei.com/Ascend910 or claim NPUs through DRA?)"
        )
    return ids


def visible_npus(env: dict[str, str], physical: list[int]) -> list[int]:
    """The NPUs the container sees, which logical ids index: `physical` (a static map's) where the device plugin
    set no ASCEND_VISIBLE_DEVICES next to a static map, else container_npus."""
    if env.get("ZOO_ASCEND_DEVICE_ID") and not env.get("ASCEND_VISIBLE_DEVICES"):
        return physical
    return container_npus(env)


def logical_device(physical: int, visible: Sequence[int]) -> int:
    """The device id MindSpore's set_device wants: the index of `physical` among the container's visible NPUs.

    CANN numbers the NPUs a container sees from 0, so a one-NPU pod is always logical 0 whatever its physical id
    (the ModelZoo run scripts and mindxdl-deploy's train_start.sh export DEVICE_ID this way); the rank table keeps
    the physical id.
    """
    ordered = sorted(visible)
    if physical not in ordered:
        raise ConfigError(f"physical NPU {physical} is not among the container's visible devices {ordered}")
    return ordered.index(physical)


def lookup_rank(
    text: str, server: str, physical: Sequence[int], rank_size: int | None = None
) -> tuple[str, int] | None:
    """(RANK_ID, physical device id) of this pod in a completed hccl.json text, or None while it is not there.

    The pod is the device `physical` of the server whose server_id (or host_ip) is `server` (its node IP).
    A completed table whose device count differs from rank_size is a ConfigError (it will never fit).
    """
    table = _table(text)
    if table is None or table.get("status") != "completed":
        return None
    if rank_size is not None:
        count = sum(len(s.get("device") or []) for s in table.get("server_list") or [])
        if count != rank_size:
            raise ConfigError(f"rank table lists {count} devices but RANK_SIZE is {rank_size}")
    for entry in table.get("server_list") or []:
        if server not in (entry.get("server_id"), entry.get("host_ip")):
            continue
        found = {str(d.get("device_id")): str(d.get("rank_id")) for d in entry.get("device") or []}
        for phys in sorted(physical):
            if str(phys) in found:
                return found[str(phys)], phys
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def wait_for_rank(
    rank_table: Path,
    server: str,
    physical: Sequence[int],
    timeout: float,
    rank_size: int | None = None,
    poll: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    attempt: str = "",
) -> tuple[str, int]:
    """Poll until the rank table is completed and lists this pod's device; RankTableTimeout after `timeout` s.

    A completed table that does not list the device is waited on too: it may be a previous attempt's table that
    the kubelet has not replaced yet (ConfigMap volumes lag 60-90 s on real nodes). Given the pod's `attempt`,
    only a table marked with it counts (the `attempt` file next to hccl.json, written by the operator in the
    same ConfigMap, which the kubelet swaps in whole): an old gang's table may list this very device, under
    another rank.
    """
    deadline = clock() + timeout
    marker = rank_table.parent / ATTEMPT_FILE
    while True:
        seen = _read(marker).strip()
        current = not attempt or seen == attempt
        found = lookup_rank(_read(rank_table), server, physical, rank_size) if current else None
        if found is not None:
            return found
        if clock() >= deadline:
            of = f" of attempt {attempt} (the table is of attempt {seen or '?'})" if not current else ""
            raise RankTableTimeout(
                f"rank table {rank_table}{of} not completed with device {list(physical)} of server {server} "
                f"after {timeout:.0f}s"
            )
        time.sleep(poll)


def resolve_host(
    host: str,
    timeout: float,
    poll: float = POLL_SECONDS,
    resolver: Callable[[str], str] = socket.gethostbyname,
) -> str:
    """The IPv4 address of host, retrying name-resolution failures for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return resolver(host)
        except OSError as err:
            if time.monotonic() >= deadline:
                raise ConnectionError(
                    f"cannot resolve MS_SCHED_HOST {host!r} after {timeout:.0f}s: {err}"
                ) from err
            time.sleep(poll)


def float_env(env: dict[str, str], name: str, default: float) -> float:
    """A duration in seconds from the environment (default when unset); ConfigError naming the variable."""
    raw = env.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        # Never the value itself: it may come from a Secret (issue 11); the name says where to look.
        raise ConfigError(
            f"{name}: expected seconds as a number, got a value that is not one ({len(raw)} characters)"
        ) from None


def ranktable_identity(env: dict[str, str]) -> tuple[str, list[int]]:
    """(node IP, physical NPU ids) of this pod: ZOO_ASCEND_SERVER_ID/ZOO_ASCEND_DEVICE_ID (static device map)
    or HOST_IP (status.hostIP) and the container's NPUs (container_npus: the device plugin's
    ASCEND_VISIBLE_DEVICES, else the davinci<N> nodes the DRA driver gave)."""
    server = env.get("ZOO_ASCEND_SERVER_ID") or env.get(contract.ENV_HOST_IP, "")
    if not server:
        raise ConfigError("HOST_IP: required with RANK_TABLE_FILE (the node IP that names this pod's server)")
    if env.get("ZOO_ASCEND_DEVICE_ID"):
        return server, visible_devices(env["ZOO_ASCEND_DEVICE_ID"])
    return server, container_npus(env)


def prepare_environment(env: dict[str, str]) -> dict[str, str]:
    """The variables to add for this pod's launch kind (ranktable, dynamic or standalone)."""
    if env.get(contract.ENV_RANK_TABLE_FILE):
        server, physical = ranktable_identity(env)
        visible = visible_npus(env, physical)
        timeout = float_env(env, "ZOO_RANKTABLE_TIMEOUT", DEFAULT_RANKTABLE_TIMEOUT)
        size = env.get(contract.ENV_RANK_SIZE, "")
        rank_size = int(size) if size.isdigit() else None
        rank_id, phys = wait_for_rank(
            Path(env[contract.ENV_RANK_TABLE_FILE]),
            server,
            physical,
            timeout,
            rank_size,
            attempt=env.get(contract.ENV_ATTEMPT, ""),
        )
        # hccl.json keeps the physical id; MindSpore gets the logical one (0 in a one-NPU pod).
        return {
            contract.ENV_RANK_ID: rank_id,
            contract.ENV_DEVICE_ID: str(logical_device(phys, visible)),
            "ZOO_PHYSICAL_DEVICE_ID": str(phys),
        }
    if env.get(contract.ENV_MS_ROLE):
        host = env.get(contract.ENV_MS_SCHED_HOST, "")
        if not host:
            raise ConfigError("MS_SCHED_HOST: required with MS_ROLE (the scheduler's host name)")
        timeout = float_env(env, "ZOO_RESOLVE_TIMEOUT", DEFAULT_RESOLVE_TIMEOUT)
        extra = {contract.ENV_MS_SCHED_HOST: resolve_host(host, timeout)}
        if "ASCEND_VISIBLE_DEVICES" in env or device_node_ids(Path(env.get(DEVICE_DIR_ENV) or "/dev")):
            # Dynamic launch on Ascend (no rank table): one process per pod drives the pod's first NPU, which is
            # logical device 0 inside the container whatever its physical id (device plugin or DRA).
            npus = container_npus(env)
            extra[contract.ENV_DEVICE_ID] = str(logical_device(npus[0], npus))
        return extra
    return {}


def cann_environment(env: dict[str, str], run: Callable[..., Any] = subprocess.run) -> dict[str, str]:
    """The variables CANN's set_env.sh scripts set, for an image that names them in ZOO_CANN_SET_ENV.

    The pod's command replaces the image's entry point, so nothing else would source them: without them
    LD_LIBRARY_PATH/PYTHONPATH lack CANN and MindSpore's Ascend backend does not load. ZOO_CANN_SET_ENV is a
    ':'-separated list; every script must exist (a missing toolkit is a broken image or node, said at once).
    """
    scripts = [s for s in env.get("ZOO_CANN_SET_ENV", "").split(":") if s]
    if not scripts:
        return {}
    missing = [s for s in scripts if not Path(s).is_file()]
    if missing:
        raise ConfigError(
            f"ZOO_CANN_SET_ENV: {', '.join(missing)} not found (is CANN installed in the image?)"
        )
    source = "; ".join(f'. "{s}"' for s in scripts)
    proc = run(["bash", "-c", f"{source} >/dev/null 2>&1; env -0"], env=env, capture_output=True, check=False)
    if proc.returncode != 0:
        raise ConfigError(f"ZOO_CANN_SET_ENV: sourcing {', '.join(scripts)} failed (exit {proc.returncode})")
    after = dict(item.split("=", 1) for item in proc.stdout.decode().split("\0") if "=" in item)
    return {k: v for k, v in after.items() if env.get(k) != v and k not in ("_", "SHLVL", "PWD", "OLDPWD")}


# A child killed by one of these was stopped on purpose (the pod is going away, a person pressed Ctrl-C).
_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def restart_in_place(code: int, restarts: int, limit: int, stopping: bool) -> bool:
    """Whether zoo-launch restarts the training process inside its pod after it ended with `code` (a Popen
    returncode: -N when signal N killed it), having restarted it `restarts` times of `limit`.

    Restarted: a retryable exit (75: a peer lost, a collective or the rank table timed out), an unexpected one
    (1, and 128+N from a shell), and a death by signal other than SIGTERM/SIGINT (SIGKILL from the OOM killer or
    a fault, SIGSEGV, SIGBUS, SIGABRT). Not restarted: success, the permanent exits (64, 66: the same
    configuration fails again), a graceful stop (79) and SIGINT (130), and anything while zoo-launch itself was
    asked to stop (the pod is being deleted). Once `limit` is spent the pod fails with the child's code and the
    operator's whole-gang restart takes over.
    """
    if stopping or code == contract.EXIT_OK or restarts >= limit:
        return False
    if code < 0:
        return -code not in _STOP_SIGNALS
    return contract.exit_class(code) == "retryable" and code != contract.EXIT_INTERRUPTED


# MindSpore's dynamic cluster declares a silent node lost after MS_NODE_TIMEOUT seconds (30 by default; measured
# here: a worker SIGKILLed, the surviving worker and the scheduler both exit 1 about 35 s later).
DEFAULT_MS_NODE_TIMEOUT = 30.0
REJOIN_MARGIN = 10.0


def restart_delay(code: int, env: dict[str, str]) -> float:
    """Seconds to wait before restarting a child that ended with `code`, so that the whole gang restarts
    together. A process killed by a signal in a dynamic cluster of several processes was the first to go: the
    scheduler and its peers still hold the old cluster until MS_NODE_TIMEOUT passes and they exit themselves
    (retryable), and a process that registered again meanwhile would join that dying cluster. So it waits the
    node timeout plus a margin; the others, which ended because of the loss, restart at once and meet it in a
    new cluster with the same scheduler address, node ids and rank table. Elsewhere 0."""
    workers = env.get(contract.ENV_MS_WORKER_NUM, "")
    if code >= 0 or not env.get(contract.ENV_MS_ROLE) or not (workers.isdigit() and int(workers) > 1):
        return 0.0
    return float_env(env, "MS_NODE_TIMEOUT", DEFAULT_MS_NODE_TIMEOUT) + REJOIN_MARGIN


def exit_status(code: int) -> int:
    """The container's exit code for a child's Popen returncode (a death by signal N is 128 + N, as a shell
    reports it)."""
    return 128 - code if code < 0 else code


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when zoo-launch dies (Linux prctl PR_SET_PDEATHSIG), so that a killed
    launcher (the container's main process) never leaves a trainer running without its pod's knowledge."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: a real container's PID namespace ends with its main process anyway


def start_child(command: list[str]) -> subprocess.Popen[bytes]:
    """The training process, inheriting stdout/stderr (the pod's log) and the environment."""
    return subprocess.Popen(command, preexec_fn=_die_with_parent)  # noqa: PLW1509 - zoo-launch has no threads


# How long a supervisor whose process crashed waits for the hub's restart order before it falls back to
# restart_delay (the hub is unreachable: its pod is gone, or the channel is blocked).
FAULT_ACK_SECONDS = 2.0
HUB_RESOLVE_TIMEOUT = 30.0
CHANNEL_POLL_SECONDS = 0.1


def last_words_dir(channel: Any) -> Path | None:
    """With a gang channel, a fresh directory for the last-words files (lastwords.py), exported to the child as
    lastwords.ENV_DIR; None without a gang (nobody else's fault to save for)."""
    if channel is None:
        return None
    try:
        directory = Path(tempfile.mkdtemp(prefix="zoo-last-words-"))
    except OSError:
        return None  # no writable temporary directory: the restart goes on without last words
    os.environ[lastwords.ENV_DIR] = str(directory)
    return directory


def hear_last_words(directory: Path | None, child: Any, stopping: bool, out: Any) -> dict[str, Any] | None:
    """Before killing a healthy process because another rank failed: ask it to save its last completed step
    (when it holds one, lastwords.asked), for up to lastwords.BOUND_SECONDS; its answer, or None."""
    if directory is None or not lastwords.asked(directory, True, stopping):
        return None
    started = time.monotonic()
    body = lastwords.ask(directory, lambda: child.poll() is None)
    took = time.monotonic() - started
    if body is not None and body.get("saved"):
        said = f"saved epoch {body.get('epoch')} step {body.get('step')} ({body.get('path')})"
    else:
        said = f"saved nothing ({(body or {}).get('reason', 'no answer')}): the newest periodic checkpoint serves"
    out.write(f"zoo-launch: last words before the gang restart: {said} in {took:.2f}s\n")
    out.flush()
    return body if body is not None else {"saved": False, "reason": "no answer"}


def supervise(
    command: list[str],
    limit: int,
    popen: Callable[[list[str]], Any] = start_child,
    out: Any = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    channel: Any = None,
) -> int:
    """Run command as a child, restarting it in place while restart_in_place says so; returns the exit code.

    SIGTERM and SIGINT are passed on to the child (its graceful stop writes a checkpoint), and no restart
    follows them. Each restart prints a `process_restart` JSON event (rank from RANK_ID or MS_NODE_ID) that
    the operator folds into status and an Event. With a gang `channel` (gangchannel.Channel) a crash is told to
    the gang at once and every supervisor kills and restarts its own process when the hub orders it (`peer`:
    true in the event of those killed), with no delay, so nobody waits for MindSpore's or HCCL's timeouts; a
    restart ordered once the bound is spent ends the pod with 75 (retryable), and the operator's whole-gang
    restart takes over.
    """
    stream = out if out is not None else sys.stdout
    stopping = False
    child: Any = None

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in _STOP_SIGNALS:
        signal.signal(signum, forward)
    rank_text = os.environ.get(contract.ENV_RANK_ID) or os.environ.get(contract.ENV_MS_NODE_ID) or "0"
    rank = int(rank_text) if rank_text.isdigit() else 0
    restarts = 0
    words_dir = last_words_dir(channel)
    while True:
        started = clock()
        if words_dir is not None:
            lastwords.reset(words_dir)
        child = popen(command)
        ordered = killed = False
        words: dict[str, Any] | None = None
        if channel is None:
            code = child.wait()
        else:
            while (code := child.poll()) is None:
                if channel.poll(CHANNEL_POLL_SECONDS) and not stopping:
                    ordered = killed = True  # a peer crashed: this process belongs to a gang that is gone
                    words = hear_last_words(words_dir, child, stopping, stream)
                    child.kill()
                    code = child.wait()
                    break
        if killed:
            if restarts >= limit:
                stream.write(f"zoo-launch: the gang restarts but this pod's {limit} restarts are spent\n")
                stream.flush()
                return contract.EXIT_RETRYABLE
        elif not restart_in_place(code, restarts, limit, stopping):
            if channel is not None and (code == contract.EXIT_OK or code in contract.PERMANENT_EXIT_CODES):
                channel.leave()  # ended for good: this pod's silence from now on is no fault
            return exit_status(code)
        elif channel is not None:
            channel.report_fault()
            ordered = channel.poll(FAULT_ACK_SECONDS)  # the hub's order comes back within milliseconds
        restarts += 1
        delay = 0.0 if ordered else restart_delay(code, dict(os.environ))
        fields = {
            "code": exit_status(code),
            "restart": restarts,
            "limit": limit,
            "ran_seconds": round(clock() - started, 3),
            "delay_seconds": delay,
            "peer": killed,  # killed by its supervisor because another rank crashed
        }
        if words is not None:  # the last completed step it saved first (global_step), or 0: none
            fields["last_words_step"] = int(words.get("global_step", 0)) if words.get("saved") else 0
        stream.write(format_event(contract.EVENT_PROCESS_RESTART, rank, fields) + "\n")
        why = (
            "another rank crashed, the gang restarts"
            if killed
            else f"the training process ended with {exit_status(code)}"
        )
        stream.write(
            f"zoo-launch: {why}; restarting it in place ({restarts} of {limit}) in {delay:.0f}s, "
            "from the newest checkpoint\n"
        )
        stream.flush()
        if delay:
            sleep(delay)
        if stopping:
            return exit_status(code)


def gang_channel(env: dict[str, str], resolve: Callable[[str], str] | None = None) -> Any:
    """The gang's fault channel when the pod is part of a gang (ZOO_GANG_HUB set), else None. Not opening one
    (the hub's name does not resolve, the port is taken) is no error: the restart falls back to restart_delay."""
    hub = env.get(contract.ENV_GANG_HUB, "")
    if not hub:
        return None
    from zoo_workloads import gangchannel

    # The hub's name resolves by now in a real gang (MS_SCHED_HOST is the same name; worker 0 is in the completed
    # rank table): a short wait, then the fallback rather than a launch stuck on a name that never comes.
    timeout = min(float_env(env, "ZOO_RESOLVE_TIMEOUT", DEFAULT_RESOLVE_TIMEOUT), HUB_RESOLVE_TIMEOUT)
    pod = env.get(contract.ENV_POD_NAME, "")
    try:
        return gangchannel.open_channel(
            hub,
            pod,
            env.get(contract.ENV_POD_IP, ""),
            resolver=resolve or (lambda h: resolve_host(h, timeout)),
        )
    except (OSError, ConnectionError) as err:
        print(
            f"zoo-launch: no gang fault channel ({err}); a crash waits for the framework's timeout",
            flush=True,
        )
        return None


def process_restarts(env: dict[str, str]) -> int:
    """ZOO_PROCESS_RESTARTS (default contract.DEFAULT_PROCESS_RESTARTS); ConfigError naming it when it is not
    a whole number from 0 to 100."""
    raw = env.get(contract.ENV_PROCESS_RESTARTS, "")
    if not raw:
        return contract.DEFAULT_PROCESS_RESTARTS
    if not raw.strip().isdigit() or int(raw) > 100:
        raise ConfigError(
            f"{contract.ENV_PROCESS_RESTARTS}: expected a whole number of restarts from 0 to 100 "
            f"(0 = never restart in place), got {len(raw)} characters that are not one"
        )
    return int(raw)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of zoo-launch; only returns on failure (success replaces the process)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        command = split_command(args)
        cann = cann_environment(dict(os.environ))
        os.environ.update(cann)
        extra = prepare_environment(dict(os.environ))
        limit = process_restarts(dict(os.environ))
    except (ZooError, OSError) as exc:
        failure = classify(exc)
        print(f"zoo-launch: {failure.message}", file=sys.stderr, flush=True)
        write_termination(failure_message(failure))
        return failure.exit_code
    os.environ.update(extra)
    for key, value in extra.items():
        print(f"zoo-launch: {key}={value}", flush=True)
    try:
        if limit > 0:
            return supervise(command, limit, channel=gang_channel(dict(os.environ)))
        os.execvp(command[0], command)
    except OSError as err:
        print(f"zoo-launch: cannot run {command[0]!r}: {err.strerror}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
    return 1  # unreachable: execvp does not return


if __name__ == "__main__":
    raise SystemExit(main())
