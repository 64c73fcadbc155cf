"""Operator settings: one dataclass read from environment variables (docs/contracts.md, the chart's values).

Every field has a default, a unit and a reason. Bad values raise ValueError naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from importlib import metadata


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

    image_ascend: str = f"zoo-operator/workload-ascend:{VERSION}"
    """ZOO_IMAGE_ASCEND: workload image for Ascend910 jobs that name none."""

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

    def image_for(self, device_type: str) -> str:
        """The default image for a device type (Ascend910, GPU or CPU)."""
        return {"Ascend910": self.image_ascend, "GPU": self.image_gpu}.get(device_type, self.image_cpu)


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
    )
