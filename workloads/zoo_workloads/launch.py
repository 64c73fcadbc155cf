"""zoo-launch: prepare a pod's environment for distributed MindSpore, then exec the training command.

ranktable launch (RANK_TABLE_FILE and ZOO_RANKS_FILE set): wait until hccl.json says `"status": "completed"`
and ranks.json lists this pod (POD_NAME), export RANK_ID and DEVICE_ID. dynamic launch (MS_ROLE set): resolve
MS_SCHED_HOST, with retries since workers may start before the scheduler's DNS name exists, and export the IP.
Then os.execvp the command after `--`. No MindSpore import here: this runs before anything heavy.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from zoo_workloads.errors import EXIT_CONFIG, ConfigError, RankTableTimeout, ZooError, classify
from zoo_workloads.events import failure_message, write_termination

DEFAULT_RANKTABLE_TIMEOUT = 600.0
DEFAULT_RESOLVE_TIMEOUT = 300.0
POLL_SECONDS = 1.0


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
    try:
        table = json.loads(text)
    except ValueError:
        return False  # the kubelet may be mid-way through updating the mounted file
    return isinstance(table, dict) and table.get("status") == "completed"


def lookup_rank(text: str, pod_name: str) -> tuple[str, str] | None:
    """(rank_id, device_id) of pod_name in a ranks.json text, or None while it is not there yet."""
    try:
        ranks = json.loads(text)
    except ValueError:
        return None
    entry = ranks.get(pod_name) if isinstance(ranks, dict) else None
    if not isinstance(entry, dict) or "rank_id" not in entry:
        return None
    return str(entry["rank_id"]), str(entry.get("device_id", "0"))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def wait_for_rank(
    rank_table: Path,
    ranks_file: Path,
    pod_name: str,
    timeout: float,
    poll: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[str, str]:
    """Poll until the rank table is completed and lists pod_name; RankTableTimeout after `timeout` seconds."""
    deadline = clock() + timeout
    while True:
        if rank_table_completed(_read(rank_table)):
            found = lookup_rank(_read(ranks_file), pod_name)
            if found is not None:
                return found
        if clock() >= deadline:
            raise RankTableTimeout(
                f"rank table {rank_table} not completed with pod {pod_name} in {ranks_file} after {timeout:.0f}s"
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
                raise ConnectionError(f"cannot resolve MS_SCHED_HOST {host!r} after {timeout:.0f}s: {err}") from err
            time.sleep(poll)


def _float_env(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        # Never the value itself: it may come from a Secret (issue 11); the name says where to look.
        raise ConfigError(f"{name}: expected seconds as a number, got a value that is not one "
                          f"({len(raw)} characters)") from None


def prepare_environment(env: dict[str, str]) -> dict[str, str]:
    """The variables to add for this pod's launch kind (ranktable, dynamic or standalone)."""
    if env.get("RANK_TABLE_FILE") and env.get("ZOO_RANKS_FILE"):
        pod = env.get("POD_NAME", "")
        if not pod:
            raise ConfigError("POD_NAME: required with RANK_TABLE_FILE (the pod's name in ranks.json)")
        timeout = _float_env(env, "ZOO_RANKTABLE_TIMEOUT", DEFAULT_RANKTABLE_TIMEOUT)
        rank_id, device_id = wait_for_rank(Path(env["RANK_TABLE_FILE"]), Path(env["ZOO_RANKS_FILE"]), pod, timeout)
        return {"RANK_ID": rank_id, "DEVICE_ID": device_id}
    if env.get("MS_ROLE"):
        host = env.get("MS_SCHED_HOST", "")
        if not host:
            raise ConfigError("MS_SCHED_HOST: required with MS_ROLE (the scheduler's host name)")
        timeout = _float_env(env, "ZOO_RESOLVE_TIMEOUT", DEFAULT_RESOLVE_TIMEOUT)
        return {"MS_SCHED_HOST": resolve_host(host, timeout)}
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of zoo-launch; only returns on failure (success replaces the process)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        command = split_command(args)
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
