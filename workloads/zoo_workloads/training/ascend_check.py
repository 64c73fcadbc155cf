"""The Ascend checks a rank can make without an NPU, and the local cluster's simulation switch.

On a real Ascend node MindSpore and HCCL fail a rank whose DEVICE_ID, RANK_ID or rank table is wrong. The local
cluster has no NPU, so its kubelet (and nothing else) sets ZOO_ASCEND_SIMULATE=1 on the pods its fake device plugin
serves: the workload then checks here everything that HCCL and the CANN runtime would check about its environment,
fails the same way a real rank would (ConfigError, one line per problem), and only then trains on CPU. Without the
switch an Ascend run is an Ascend run: there is no CPU fallback anywhere else.

Checked (what real nodes do, ../shared/ASCEND.md): the container sees exactly its NPUs (ASCEND_VISIBLE_DEVICES, set
by ascend-device-plugin's SetAscendRuntimeEnv, and the device files Ascend Docker Runtime mounts); DEVICE_ID is
logical (an index among them); the rank table is completed, dense and of RANK_SIZE devices; RANK_ID is the table's
rank of this node's physical NPU; HCCL_CONNECT_TIMEOUT is within HCCL's accepted range.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from zoo_workloads import contract
from zoo_workloads.errors import ConfigError
from zoo_workloads.launch import DEVICE_DIR_ENV, container_npus, lookup_rank

SIMULATE = "ZOO_ASCEND_SIMULATE"
DEVICE_DIR = DEVICE_DIR_ENV
HCCL_TIMEOUT_RANGE = (
    120,
    7200,
)  # HCCL_CONNECT_TIMEOUT's accepted values in seconds (CANN's env var reference)


def simulated(env: dict[str, str]) -> bool:
    """Whether this is the local cluster's simulated NPU (only its kubelet sets the switch)."""
    return env.get(SIMULATE) == "1"


def _table_problems(table: Any, rank_size: int) -> list[str]:
    if not isinstance(table, dict) or table.get("status") != "completed":
        return ["rank table: not completed"]
    servers = table.get("server_list") or []
    devices = [d for s in servers for d in s.get("device") or []]
    problems = []
    if table.get("server_count") != str(len(servers)):
        problems.append(
            f"rank table: server_count {table.get('server_count')!r} but {len(servers)} servers listed"
        )
    ranks = sorted(int(d.get("rank_id", -1)) for d in devices)
    if ranks != list(range(len(devices))):
        problems.append("rank table: rank_id values are not 0..n-1, each once")
    if len(devices) != rank_size:
        problems.append(f"rank table: {len(devices)} devices but RANK_SIZE is {rank_size}")
    if not all(str(d.get("device_id", "")).isdigit() and d.get("device_ip") for d in devices):
        problems.append("rank table: every device needs a numeric device_id and a device_ip")
    return problems


def problems(env: dict[str, str]) -> list[str]:
    """Everything wrong with this rank's Ascend environment (empty when HCCL would accept it)."""
    out: list[str] = []
    try:
        visible = container_npus(env)
    except ConfigError as err:
        return [str(err)]
    device_dir = env.get(DEVICE_DIR, "/dev")
    files = sorted(
        int(m.group(1))
        for p in Path(device_dir).glob("davinci*")
        if (m := re.fullmatch(r"davinci(\d+)", p.name))
    )
    if files != visible:
        out.append(f"NPU device files {files} in {device_dir} are not the visible devices {visible}")
    raw_device = env.get(contract.ENV_DEVICE_ID, "")
    if not raw_device.isdigit() or int(raw_device) >= len(visible):
        out.append(
            f"DEVICE_ID {raw_device!r} is not a logical device 0..{len(visible) - 1} of this container "
            f"(physical {visible}); set_device would fail"
        )
    size = env.get(contract.ENV_RANK_SIZE, "")
    rank_size = int(size) if size.isdigit() else 0
    table_file = env.get(contract.ENV_RANK_TABLE_FILE, "")
    if table_file:  # rank-table launch; the dynamic launch (msrun style) has none
        try:
            text = Path(table_file).read_text(encoding="utf-8")
            table = json.loads(text)
        except (OSError, ValueError) as err:
            return [*out, f"RANK_TABLE_FILE {table_file!r}: {err}"]
        out += _table_problems(table, rank_size)
        if not out and raw_device.isdigit():
            physical = visible[int(raw_device)]
            found = lookup_rank(text, env.get(contract.ENV_HOST_IP, ""), [physical])
            if found is None:
                out.append(f"rank table lists no NPU {physical} of server {env.get(contract.ENV_HOST_IP)!r}")
            elif found[0] != env.get(contract.ENV_RANK_ID):
                out.append(
                    f"RANK_ID {env.get(contract.ENV_RANK_ID)!r} but the table gives NPU {physical} of "
                    f"{env.get(contract.ENV_HOST_IP)} rank {found[0]}"
                )
    timeout = env.get("HCCL_CONNECT_TIMEOUT")
    lo, hi = HCCL_TIMEOUT_RANGE
    if timeout is not None and not (timeout.isdigit() and lo <= int(timeout) <= hi):
        out.append(f"HCCL_CONNECT_TIMEOUT {timeout!r}: HCCL accepts {lo}..{hi} seconds")
    return out


def verify(env: dict[str, str]) -> None:
    """ConfigError listing every problem, as HCCL or the CANN runtime would refuse the rank."""
    found = problems(env)
    if found:
        raise ConfigError("Ascend environment: " + "; ".join(found))
