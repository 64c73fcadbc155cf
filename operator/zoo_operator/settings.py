"""Operator settings: one dataclass read from environment variables (docs/contracts.md, the chart's values).

Every field has a default, a unit and a reason. Bad values raise ValueError naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from importlib import metadata
from typing import Any

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

    ascend_dra_device_class: str = ""
    """ZOO_ASCEND_DRA_DEVICE_CLASS: the DeviceClass through which Ascend pods claim their NPUs (dynamic resource
    allocation, a ResourceClaimTemplate per job) instead of requesting huawei.com/Ascend910; empty = the extended
    resource (the device plugin). MindCluster's Ascend DRA driver installs the class npu.huawei.com."""

    metrics_port: int = 0
    """ZOO_METRICS_PORT (TCP port): Prometheus metrics; 0 = off, so no port is opened unless asked for."""

    health_port: int = 8080
    """ZOO_HEALTH_PORT (TCP port): kopf's liveness endpoint /healthz for the Deployment's probe; 0 = off."""

    listen_host: str = "0.0.0.0"
    """ZOO_LISTEN_HOST (address): where /healthz and /metrics listen. The chart sets the pod's IP, so two
    operators that share a network namespace (the local cluster's pods do) never fight over a port."""

    pod_run_as_user: int = 1000
    """ZOO_POD_RUN_AS_USER (uid): the user of every workload container. Non-root, so pods pass Pod Security
    `restricted`; 0 runs as root and drops runAsNonRoot (then `restricted` refuses the pods)."""

    pod_run_as_group: int = 1000
    """ZOO_POD_RUN_AS_GROUP (gid): the primary group of workload containers. 1000 is HwHiAiUser on Ascend nodes
    (MindCluster installs), the group that may open the NPU devices (/work/shared/ASCEND.md)."""

    pod_fs_group: int = 1000
    """ZOO_POD_FS_GROUP (gid): group that owns the pods' writable volumes (checkpoints); 0 = not set."""

    pod_supplemental_groups: tuple[int, ...] = ()
    """ZOO_POD_SUPPLEMENTAL_GROUPS (comma-separated gids): extra groups, e.g. a driver group other than 1000."""

    # The platform policy (zoo_operator.platform_policy): what a ZooTrainingJob may put into its pods. Whoever
    # may create a ZooTrainingJob may run pods within it, so the defaults are safe.
    policy_host_path_prefixes: tuple[str, ...] = ("/",)
    """ZOO_POLICY_HOST_PATH_PREFIXES (comma-separated absolute paths): dataset and checkpoint hostPath volumes
    must lie under one of these; empty = no hostPath at all. System directories (/, /etc, /proc, /var/run,
    /var/lib/kubelet, ...) are refused whatever the prefixes. Set it to your data roots (e.g. /data)."""

    policy_volume_kinds: tuple[str, ...] = (
        "emptyDir",
        "configMap",
        "persistentVolumeClaim",
        "downwardAPI",
        "ephemeral",
    )
    """ZOO_POLICY_VOLUME_KINDS (comma-separated VolumeSource keys): kinds allowed in spec.podTemplate.volumes.
    hostPath, secret, projected (service-account tokens) and nfs are left out by default."""

    policy_allow_secrets: bool = False
    """ZOO_POLICY_ALLOW_SECRETS (true|false): whether podTemplate may reference Secrets (secret and projected
    volumes, env valueFrom.secretKeyRef). A job's creator could otherwise read any Secret of the namespace."""

    policy_toleration_keys: tuple[str, ...] = ()
    """ZOO_POLICY_TOLERATION_KEYS (comma-separated): toleration keys allowed in podTemplate; empty = any explicit
    key outside the kubernetes.io namespaces; `*` = anything, including a key-less `operator: Exists`."""

    policy_priority_classes: tuple[str, ...] = ()
    """ZOO_POLICY_PRIORITY_CLASSES (comma-separated): priority classes jobs may use; empty = any but system-*;
    `*` = any."""

    policy_denied_env: tuple[str, ...] = (
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "BASH_ENV",
        "ENV",
    )
    """ZOO_POLICY_DENIED_ENV (comma-separated names): env names podTemplate may not set (they change which code
    runs). The operator's own variables (ZOO_*, MS_*, RANK_*, POD_*, DEVICE_ID) are always refused."""

    network_policy: bool = True
    """ZOO_NETWORK_POLICY (true|false): give every job a NetworkPolicy that admits only the job's own pods to its
    scheduler and HCCL ports (zoo_operator.netpolicy). On by default; it only acts where the CNI enforces
    policies, and costs nothing where it does not."""

    network_policy_restrict_egress: bool = False
    """ZOO_NETWORK_POLICY_RESTRICT_EGRESS (true|false): the job's pods may then reach only each other and the
    cluster DNS. Off by default: datasets, pretrained weights and logs may live anywhere; a platform team that
    knows its egress turns it on."""

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


def _names(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if name not in env:
        return default
    return tuple(x.strip() for x in env[name].split(",") if x.strip())


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ValueError(f"{name}={raw!r}: must be true or false")
    return raw == "true"


CHIPS = tuple(ASCEND_CHIPS)


def policy_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The policy_* fields of Settings from the environment (a set but empty list variable means empty)."""
    defaults = Settings()
    prefixes = _names(env, "ZOO_POLICY_HOST_PATH_PREFIXES", defaults.policy_host_path_prefixes)
    bad = [p for p in prefixes if not p.startswith("/")]
    if bad:
        raise ValueError(f"ZOO_POLICY_HOST_PATH_PREFIXES: {bad[0]!r} is not an absolute path")
    return {
        "policy_host_path_prefixes": prefixes,
        "policy_volume_kinds": _names(env, "ZOO_POLICY_VOLUME_KINDS", defaults.policy_volume_kinds),
        "policy_allow_secrets": _bool(env, "ZOO_POLICY_ALLOW_SECRETS", defaults.policy_allow_secrets),
        "policy_toleration_keys": _names(env, "ZOO_POLICY_TOLERATION_KEYS", defaults.policy_toleration_keys),
        "policy_priority_classes": _names(
            env, "ZOO_POLICY_PRIORITY_CLASSES", defaults.policy_priority_classes
        ),
        "policy_denied_env": _names(env, "ZOO_POLICY_DENIED_ENV", defaults.policy_denied_env),
    }


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
        ascend_accelerator_types={
            chip: v for chip in CHIPS if (v := env.get(f"ZOO_ASCEND_ACCELERATOR_TYPE_{chip}", "").strip())
        },
        ascend_driver_mounts=_bool(env, "ZOO_ASCEND_DRIVER_MOUNTS", defaults.ascend_driver_mounts),
        ascend_shm_size=env.get("ZOO_ASCEND_SHM_SIZE", "").strip(),
        ascend_volcano=_bool(env, "ZOO_ASCEND_VOLCANO", defaults.ascend_volcano),
        ascend_dra_device_class=_device_class(env.get("ZOO_ASCEND_DRA_DEVICE_CLASS", "").strip()),
        gang_backend=_choice(env, "ZOO_GANG_BACKEND", tuple(GANG_BACKENDS), defaults.gang_backend),
        pod_run_as_user=_int(env, "ZOO_POD_RUN_AS_USER", defaults.pod_run_as_user, 0),
        pod_run_as_group=_int(env, "ZOO_POD_RUN_AS_GROUP", defaults.pod_run_as_group, 0),
        pod_fs_group=_int(env, "ZOO_POD_FS_GROUP", defaults.pod_fs_group, 0),
        pod_supplemental_groups=_ints(env, "ZOO_POD_SUPPLEMENTAL_GROUPS"),
        network_policy=_bool(env, "ZOO_NETWORK_POLICY", defaults.network_policy),
        network_policy_restrict_egress=_bool(
            env, "ZOO_NETWORK_POLICY_RESTRICT_EGRESS", defaults.network_policy_restrict_egress
        ),
        **policy_settings(env),
    )


def _device_class(raw: str) -> str:
    """A DeviceClass name (a DNS subdomain, as the apiserver checks it) or empty."""
    if raw and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", raw):
        raise ValueError(
            f"ZOO_ASCEND_DRA_DEVICE_CLASS={raw!r}: must be a DeviceClass name (lower-case DNS subdomain, e.g. "
            "npu.huawei.com) or empty"
        )
    return raw


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


def _ints(env: Mapping[str, str], name: str) -> tuple[int, ...]:
    raw = env.get(name, "").strip()
    try:
        values = tuple(int(x) for x in raw.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{name}={raw!r}: must be comma-separated integers >= 0") from None
    if any(v < 0 for v in values):
        raise ValueError(f"{name}={raw!r}: must be comma-separated integers >= 0")
    return values
