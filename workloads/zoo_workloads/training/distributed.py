"""Where this process stands in a job: alone, HCCL rank-table launch, or MindSpore's dynamic cluster.

- RANK_TABLE_FILE + RANK_SIZE > 1 (Ascend): DEVICE_ID picks the card, HCCL is initialised.
- MS_ROLE (+ MS_SCHED_HOST/PORT, MS_WORKER_NUM): the dynamic cluster (mccl on CPU, nccl on GPU). The MS_SCHED
  role runs the same entry point: it only calls init(), which serves the cluster and ends the process.
- otherwise: one process, rank 0 of 1.
Data parallel: set_auto_parallel_context(DATA_PARALLEL, gradients_mean=True), then init().
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from zoo_workloads import contract
from zoo_workloads.errors import ConfigError


@dataclass(frozen=True)
class Launch:
    """The launch kind read from the environment (pure data; see detect)."""

    kind: str  # "single" | "ranktable" | "dynamic" | "simulated" (local cluster, see training.ascend_check)
    role: str  # "worker" | "scheduler"
    rank_size: int
    device_id: int


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    try:
        return int(raw) if raw != "" else default
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None


def detect(env: dict[str, str]) -> Launch:
    """The launch kind of this process from its environment variables."""
    device_id = _int(env, contract.ENV_DEVICE_ID, 0)
    role = env.get(contract.ENV_MS_ROLE, "")
    if role:
        if role not in (contract.MS_ROLE_SCHEDULER, contract.MS_ROLE_WORKER):
            raise ConfigError(f"MS_ROLE: {role!r} is not one of MS_SCHED, MS_WORKER")
        size = _int(env, contract.ENV_MS_WORKER_NUM, _int(env, contract.ENV_RANK_SIZE, 1))
        return Launch(
            "dynamic", "scheduler" if role == contract.MS_ROLE_SCHEDULER else "worker", size, device_id
        )
    size = _int(env, contract.ENV_RANK_SIZE, 1)
    if env.get(contract.ENV_RANK_TABLE_FILE) and size > 1:
        return Launch("ranktable", "worker", size, device_id)
    return Launch("single", "worker", 1, device_id)


def init(launch: Launch) -> tuple[int, int]:
    """Initialise communication for the launch; returns (rank, rank_size). The scheduler never returns."""
    if launch.kind == "single":
        return 0, 1
    if launch.kind == "simulated":
        # The local cluster's simulated NPUs (training.ascend_check): the rank from zoo-launch, no collectives.
        return _int(dict(os.environ), contract.ENV_RANK_ID, 0), launch.rank_size
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank
    from mindspore.communication import init as ms_init

    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    ms_init()
    if launch.role == "scheduler":
        raise SystemExit(
            0
        )  # init() serves the cluster and exits in MindSpore 2.10; be explicit if it returns
    size = get_group_size()
    ms.set_auto_parallel_context(device_num=size)
    return get_rank(), size
