"""The platform policy: what a ZooTrainingJob may put into the pods the operator creates for it.

Pure. The platform team sets it in the chart (values -> ZOO_POLICY_* -> `Settings.policy_*`); `spec.parse` calls
`problems` before any pod exists, so a job outside the policy fails with InvalidSpec naming the field. The
operator's own service account creates the pods, so without this check whoever may create a ZooTrainingJob could
mount the node's `/`, read any Secret of the namespace or schedule onto control-plane nodes.

Messages name fields and env var names, never an env value.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from zoo_operator import ascend
from zoo_operator import conditions as c
from zoo_operator.settings import Settings
from zoo_workloads import contract

# Refused as hostPath whatever ZOO_POLICY_HOST_PATH_PREFIXES says: the node's system and runtime directories.
SYSTEM_PATHS = (
    "/",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/run",
    "/var/run",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/log",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
)
# The operator's own variables: a job setting them would break the launch contract (docs/contracts.md).
RESERVED_ENV_PREFIXES = ("ZOO_", "MS_", "RANK_", "POD_")
RESERVED_ENV = (
    contract.ENV_DEVICE_ID,
    contract.ENV_RANK_TABLE_FILE,
    contract.ENV_HOST_IP,
    ascend.HCCL_TIMEOUT_ENV,
    *(name for name, _ in contract.SCRATCH_ENV if not name.startswith(RESERVED_ENV_PREFIXES)),
)
# Volume names and mount paths the operator uses itself.
RESERVED_VOLUMES = c.OWN_VOLUMES
RESERVED_MOUNT_ROOTS = (
    c.OWN_MOUNT_PATHS + c.ASCEND_MOUNT_PATHS
)  # an Ascend job's; other jobs: c.OWN_MOUNT_PATHS


def _under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def host_path_problem(path: Any, field: str, settings: Settings) -> str | None:
    """Why a hostPath is not allowed, or None."""
    if not isinstance(path, str) or not path.startswith("/"):
        return None  # the schema / spec.py already name it
    norm = posixpath.normpath(path)
    if norm in SYSTEM_PATHS or any(_under(norm, p) for p in SYSTEM_PATHS if p != "/"):
        return f"{field}: {norm} is a system directory; the platform policy never allows it as a hostPath"
    prefixes = settings.policy_host_path_prefixes
    if not prefixes:
        return (
            f"{field}: hostPath volumes are not allowed by the platform policy; use a persistentVolumeClaim"
        )
    if not any(_under(norm, p) for p in prefixes):
        return (
            f"{field}: {norm} is outside the hostPath prefixes the platform policy allows "
            f"({', '.join(prefixes)})"
        )
    return None


def _volume_problems(i: int, volume: Mapping[str, Any], settings: Settings) -> list[str]:
    field = f"spec.podTemplate.volumes[{i}]"
    out: list[str] = []
    if volume.get("name") in RESERVED_VOLUMES:
        out.append(f"{field}.name: {volume.get('name')} is the operator's own volume")
    for kind, source in volume.items():
        if kind == "name":
            continue
        if kind in ("secret", "projected") and not settings.policy_allow_secrets:
            out.append(
                f"{field}.{kind}: Secret and projected (service-account token) volumes are not allowed by "
                "the platform policy"
            )
        elif kind not in settings.policy_volume_kinds and kind != "hostPath":
            out.append(
                f"{field}.{kind}: volume kind not allowed by the platform policy (allowed: "
                f"{', '.join(settings.policy_volume_kinds) or 'none'})"
            )
        elif kind == "hostPath":
            if "hostPath" not in settings.policy_volume_kinds:
                out.append(
                    f"{field}.hostPath: hostPath volumes in podTemplate are not allowed by the platform "
                    "policy; use spec.dataset.volume or spec.checkpoint.volume"
                )
            else:
                problem = host_path_problem((source or {}).get("path"), f"{field}.hostPath.path", settings)
                out += [problem] if problem else []
    return out


def _mount_problems(i: int, mount: Mapping[str, Any], roots: Sequence[str]) -> list[str]:
    field = f"spec.podTemplate.volumeMounts[{i}]"
    out: list[str] = []
    if mount.get("name") in RESERVED_VOLUMES:
        out.append(f"{field}.name: {mount.get('name')} is the operator's own volume; it is mounted already")
    path = mount.get("mountPath")
    if isinstance(path, str) and any(
        _under(posixpath.normpath(path), root) or _under(root, posixpath.normpath(path)) for root in roots
    ):
        out.append(
            f"{field}.mountPath: {posixpath.normpath(path)} overlaps a path the operator mounts "
            f"({', '.join(roots)})"
        )
    return out


def _env_problems(i: int, var: Mapping[str, Any], settings: Settings) -> list[str]:
    field = f"spec.podTemplate.env[{i}]"
    name = str(var.get("name") or "")
    out: list[str] = []
    if name in settings.policy_denied_env:
        out.append(
            f"{field}.name: {name} may not be set (platform policy: {', '.join(settings.policy_denied_env)})"
        )
    elif name in RESERVED_ENV or name.startswith(RESERVED_ENV_PREFIXES):
        out.append(
            f"{field}.name: {name} is set by the operator ({', '.join(RESERVED_ENV_PREFIXES)}*, "
            f"{', '.join(RESERVED_ENV)})"
        )
    source = var.get("valueFrom")
    if isinstance(source, Mapping) and "secretKeyRef" in source and not settings.policy_allow_secrets:
        out.append(
            f"{field}.valueFrom.secretKeyRef: {name}: Secret references are not allowed by the platform "
            "policy"
        )
    return out


def _toleration_problems(i: int, tol: Any, settings: Settings) -> list[str]:
    field = f"spec.podTemplate.tolerations[{i}]"
    allowed = settings.policy_toleration_keys
    if "*" in allowed:
        return []
    key = tol.get("key") if isinstance(tol, Mapping) else None
    if not key:
        return [
            f"{field}: a toleration without a key tolerates every taint; not allowed by the platform policy"
        ]
    if allowed and key not in allowed:
        return [f"{field}.key: {key} is not allowed by the platform policy (allowed: {', '.join(allowed)})"]
    if not allowed and "kubernetes.io/" in str(key):
        return [
            (
                f"{field}.key: {key} is a Kubernetes taint (control plane, node conditions); not allowed by "
                "the platform policy"
            )
        ]
    return []


def priority_class_problem(name: str | None, settings: Settings) -> str | None:
    """Why a priority class is not allowed, or None."""
    allowed = settings.policy_priority_classes
    if not name or "*" in allowed:
        return None
    if allowed and name not in allowed:
        return (
            f"spec.scheduling.priorityClassName: {name} is not allowed by the platform policy "
            f"(allowed: {', '.join(allowed)})"
        )
    if not allowed and name.startswith("system-"):
        return f"spec.scheduling.priorityClassName: {name} is reserved for the cluster's own components"
    return None


def problems(
    *,
    dataset_volume: Mapping[str, Any],
    checkpoint_volume: Mapping[str, Any],
    volumes: Collection[Any],
    volume_mounts: Collection[Any],
    env: Collection[Any],
    tolerations: Collection[Any],
    priority_class_name: str | None,
    settings: Settings,
    ascend: bool = True,
) -> list[str]:
    """Every way the job's pod additions break the platform policy, one line each starting with the field.
    `ascend`: the job runs on Ascend NPUs, whose pods get the operator's Ascend mounts too."""
    roots = RESERVED_MOUNT_ROOTS if ascend else c.OWN_MOUNT_PATHS
    out: list[str] = []
    for field, volume in (
        ("spec.dataset.volume", dataset_volume),
        ("spec.checkpoint.volume", checkpoint_volume),
    ):
        host = volume.get("hostPath")
        if isinstance(host, Mapping):
            problem = host_path_problem(host.get("path"), f"{field}.hostPath.path", settings)
            out += [problem] if problem else []
    for i, volume in enumerate(volumes):
        if isinstance(volume, Mapping):
            out += _volume_problems(i, volume, settings)
    for i, mount in enumerate(volume_mounts):
        if isinstance(mount, Mapping):
            out += _mount_problems(i, mount, roots)
    for i, var in enumerate(env):
        if isinstance(var, Mapping):
            out += _env_problems(i, var, settings)
    for i, tol in enumerate(tolerations):
        out += _toleration_problems(i, tol, settings)
    problem = priority_class_problem(priority_class_name, settings)
    return out + ([problem] if problem else [])
