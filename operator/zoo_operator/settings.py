"""Operator settings: one dataclass read from environment variables (docs/contracts.md, the chart's values).

Every field has a default, a unit and a reason. Bad values raise ValueError naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from importlib import metadata

from zoo_operator.schema import ASCEND_CHIPS, GANG_BACKENDS


def _version() -> str:
    try:
        return metadata.version("zoo-operator")
    except metadata.PackageNotFoundError:  # running from a source tree without an install
        return "0.1.0"


VERSION = _version()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """What configures the operator; nothing else does."""

    watch_namespaces: tuple[str, ...] = ()
    """ZOO_WATCH_NAMESPACES: namespaces to watch; empty = the whole cluster (needs cluster-wide RBAC)."""

    status_interval_seconds: float = 5.0
    """ZOO_STATUS_INTERVAL_SECONDS (s): at most one status write per job in this interval, so a 1024-rank job
    logging every step does not flood the apiserver. Phase changes are written at once."""

    log_tail_lines: int = 20
    """ZOO_LOG_TAIL_LINES (lines): last log lines kept per rank in status; bounds the object's size."""

    image_cpu: str = f"zoo-operator/workload-cpu:{VERSION}"
    """ZOO_IMAGE_CPU: workload image for CPU jobs that name none; defaults to this operator's version."""

    image_gpu: str = f"zoo-operator/workload-gpu:{VERSION}"
    """ZOO_IMAGE_GPU: workload image for GPU jobs that name none."""

    image_ascend: str = ""
    """ZOO_IMAGE_ASCEND: workload image for Ascend910 jobs of every chip that has no image of its own; empty =
    the per-chip default below."""

    ascend_images: dict[str, str] = dataclasses.field(default_factory=dict)
    """ZOO_IMAGE_ASCEND_910, ZOO_IMAGE_ASCEND_910B, ZOO_IMAGE_ASCEND_A3: workload image per chip generation (the
    CANN base images differ per chip and one built for another chip does not run); unset =
    zoo-operator/workload-ascend:<version>-<chip>."""

    ascend_chip: str = "910B"
    """ZOO_ASCEND_CHIP: chip generation of Ascend jobs that name none in spec.device.chip (910, 910B or A3);
    910B because Atlas 800T A2 is what most current clusters run."""

    ascend_host_arch: str = "huawei-arm"
    """ZOO_ASCEND_HOST_ARCH: the host-arch node selector of Ascend pods (huawei-arm or huawei-x86, as
    MindCluster labels nodes); "none" = no selector."""

    ascend_accelerator_types: dict[str, str] = dataclasses.field(default_factory=dict)
    """ZOO_ASCEND_ACCELERATOR_TYPE_<CHIP>: the accelerator-type node selector per chip; unset = the label
    MindCluster puts on that chip's servers (zoo_operator.ascend.CHIPS); "none" = no selector."""

    ascend_driver_mounts: bool = True
    """ZOO_ASCEND_DRIVER_MOUNTS: hostPath-mount /usr/local/Ascend/driver (read-only) and npu-smi into Ascend
    pods, as nodes without Ascend Docker Runtime need; false where the runtime mounts them."""

    ascend_shm_size: str = ""
    """ZOO_ASCEND_SHM_SIZE (quantity): sizeLimit of the memory-backed /dev/shm of Ascend pods; empty = none."""

    gang_backend: str = "volcano"
    """ZOO_GANG_BACKEND: who schedules gangs of jobs that name no spec.scheduling.gangBackend: volcano or
    kubernetes (the kube-scheduler's native gang scheduling, alpha in 1.35/1.36)."""

    ascend_volcano: bool = False
    """ZOO_ASCEND_VOLCANO: the cluster runs Volcano (MindCluster's device plugin in Volcano mode hands NPUs only
    to pods Volcano placed), so Ascend jobs are gang-scheduled by Volcano unless spec.scheduling.gang is false."""

    metrics_port: int = 0
    """ZOO_METRICS_PORT (TCP port): Prometheus metrics; 0 = off, so no port is opened unless asked for."""

    health_port: int = 8080
    """ZOO_HEALTH_PORT (TCP port): kopf's liveness endpoint /healthz for the Deployment's probe; 0 = off."""

    listen_host: str = "0.0.0.0"
    """ZOO_LISTEN_HOST (address): where /healthz and /metrics listen. The chart sets the pod's IP, so two
    operators that share a network namespace (the local cluster's pods do) never fight over a port."""

    def listen_url(self, port: int, path: str = "") -> str:
        """http://host:port/path on listen_host (an IPv6 address gets brackets)."""
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"http://{host}:{port}{path}"

    def image_for(self, device_type: str, chip: str | None = None) -> str:
        """The default image for a device type (Ascend910, GPU or CPU) and, on Ascend, chip generation."""
        if device_type == "Ascend910":
            chip = chip or self.ascend_chip
            default = f"zoo-operator/workload-ascend:{VERSION}-{chip.lower()}"
            return self.ascend_images.get(chip) or self.image_ascend or default
        return self.image_gpu if device_type == "GPU" else self.image_cpu

    def accelerator_type(self, chip: str, default: str) -> str:
        """The accelerator-type node selector for a chip ("" = none)."""
        value = self.ascend_accelerator_types.get(chip, default)
        return "" if value == "none" else value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: must be an integer >= {minimum}") from None
    if value < minimum:
        raise ValueError(f"{name}={raw!r}: must be an integer >= {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: must be a number of seconds > 0") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r}: must be a number of seconds > 0")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ValueError(f"{name}={raw!r}: must be true or false")
    return raw == "true"


CHIPS = tuple(ASCEND_CHIPS)


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (default: os.environ); unset or empty variables keep their defaults."""
    env = os.environ if env is None else env
    defaults = Settings()
    namespaces = tuple(ns.strip() for ns in env.get("ZOO_WATCH_NAMESPACES", "").split(",") if ns.strip())
    return Settings(
        watch_namespaces=namespaces,
        status_interval_seconds=_float(env, "ZOO_STATUS_INTERVAL_SECONDS", defaults.status_interval_seconds),
        log_tail_lines=_int(env, "ZOO_LOG_TAIL_LINES", defaults.log_tail_lines, 0),
        image_cpu=env.get("ZOO_IMAGE_CPU", "").strip() or defaults.image_cpu,
        image_gpu=env.get("ZOO_IMAGE_GPU", "").strip() or defaults.image_gpu,
        image_ascend=env.get("ZOO_IMAGE_ASCEND", "").strip() or defaults.image_ascend,
        metrics_port=_int(env, "ZOO_METRICS_PORT", defaults.metrics_port, 0),
        health_port=_int(env, "ZOO_HEALTH_PORT", defaults.health_port, 0),
        listen_host=env.get("ZOO_LISTEN_HOST", "").strip() or defaults.listen_host,
        ascend_images={chip: v for chip in CHIPS if (v := env.get(f"ZOO_IMAGE_ASCEND_{chip}", "").strip())},
        ascend_chip=_choice(env, "ZOO_ASCEND_CHIP", CHIPS, defaults.ascend_chip),
        ascend_host_arch=_host_arch(env.get("ZOO_ASCEND_HOST_ARCH", "").strip(), defaults.ascend_host_arch),
        ascend_accelerator_types={chip: v for chip in CHIPS
                                  if (v := env.get(f"ZOO_ASCEND_ACCELERATOR_TYPE_{chip}", "").strip())},
        ascend_driver_mounts=_bool(env, "ZOO_ASCEND_DRIVER_MOUNTS", defaults.ascend_driver_mounts),
        ascend_shm_size=env.get("ZOO_ASCEND_SHM_SIZE", "").strip(),
        ascend_volcano=_bool(env, "ZOO_ASCEND_VOLCANO", defaults.ascend_volcano),
        gang_backend=_choice(env, "ZOO_GANG_BACKEND", tuple(GANG_BACKENDS), defaults.gang_backend),
    )


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip()
    if raw and raw not in allowed:
        raise ValueError(f"{name}={raw!r}: must be one of {', '.join(allowed)}")
    return raw or default


def _host_arch(raw: str, default: str) -> str:
    if raw == "none":
        return ""
    if raw and raw not in ("huawei-arm", "huawei-x86"):
        raise ValueError(f"ZOO_ASCEND_HOST_ARCH={raw!r}: must be huawei-arm, huawei-x86 or none")
    return raw or default
