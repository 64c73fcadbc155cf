"""zoo-launch: prepare a pod's environment for distributed MindSpore, then exec the training command.

ranktable launch (RANK_TABLE_FILE set): wait until hccl.json says `"status": "completed"` and lists this pod's
NPU (its node IP HOST_IP and physical id from ASCEND_VISIBLE_DEVICES), export RANK_ID and the LOGICAL DEVICE_ID
(the NPU's index among the container's visible devices: 0 in a one-NPU pod; hccl.json keeps the physical id). dynamic launch (MS_ROLE set): resolve
MS_SCHED_HOST, with retries since workers may start before the scheduler's DNS name exists, and export the IP.
Then os.execvp the command after `--`. No MindSpore import here: this runs before anything heavy.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoo_workloads import contract
from zoo_workloads.errors import EXIT_CONFIG, ConfigError, RankTableTimeout, ZooError, classify
from zoo_workloads.events import failure_message, write_termination

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
    or HOST_IP (status.hostIP) and ASCEND_VISIBLE_DEVICES (the device plugin's)."""
    server = env.get("ZOO_ASCEND_SERVER_ID") or env.get(contract.ENV_HOST_IP, "")
    if not server:
        raise ConfigError("HOST_IP: required with RANK_TABLE_FILE (the node IP that names this pod's server)")
    devices = env.get("ZOO_ASCEND_DEVICE_ID") or env.get("ASCEND_VISIBLE_DEVICES", "")
    if not devices:
        raise ConfigError(
            "ASCEND_VISIBLE_DEVICES is not set: the device plugin gave this container no NPU "
            "(does the pod request huawei.com/Ascend910?)"
        )
    return server, visible_devices(devices)


def prepare_environment(env: dict[str, str]) -> dict[str, str]:
    """The variables to add for this pod's launch kind (ranktable, dynamic or standalone)."""
    if env.get(contract.ENV_RANK_TABLE_FILE):
        server, physical = ranktable_identity(env)
        visible = (
            visible_devices(env["ASCEND_VISIBLE_DEVICES"]) if env.get("ASCEND_VISIBLE_DEVICES") else physical
        )
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
        if env.get("ASCEND_VISIBLE_DEVICES"):
            # Dynamic launch on Ascend (no rank table): one process per pod drives the pod's first NPU, which is
            # logical device 0 inside the container whatever its physical id.
            extra[contract.ENV_DEVICE_ID] = str(
                logical_device(
                    visible_devices(env["ASCEND_VISIBLE_DEVICES"])[0],
                    visible_devices(env["ASCEND_VISIBLE_DEVICES"]),
                )
            )
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of zoo-launch; only returns on failure (success replaces the process)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        command = split_command(args)
        cann = cann_environment(dict(os.environ))
        os.environ.update(cann)
        extra = prepare_environment(dict(os.environ))
    except (ZooError, OSError) as exc:
        failure = classify(exc)
        print(f"zoo-launch: {failure.message}", file=sys.stderr, flush=True)
        write_termination(failure_message(failure))
        return failure.exit_code
    os.environ.update(extra)
    for key, value in extra.items():
        print(f"zoo-launch: {key}={value}", flush=True)
    try:
        os.execvp(command[0], command)
    except OSError as err:
        print(f"zoo-launch: cannot run {command[0]!r}: {err.strerror}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
    return 1  # unreachable: execvp does not return


if __name__ == "__main__":
    raise SystemExit(main())
