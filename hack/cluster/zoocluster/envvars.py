"""A container's environment and command line, resolved as the kubelet does (fieldRef, config maps, $(VAR))."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

Lookup = Callable[[str, str], dict[str, Any] | None]  # (namespace, name) -> object or None

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_LABEL_PATH = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")


class ConfigError(Exception):
    """The container cannot start yet (a missing config map, secret or key): CreateContainerConfigError."""


def expand(value: str, env: dict[str, str]) -> str:
    """Expand $(VAR) references from env (unknown ones stay as written; $$ is a literal $)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _REF.sub(sub, value)


def field_value(pod: dict[str, Any], path: str, pod_ip: str, host_ip: str) -> str:
    """The value of a downward-API fieldRef path for the pod."""
    meta, spec = pod["metadata"], pod["spec"]
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return simple[path]
    m = _LABEL_PATH.fullmatch(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"fieldRef.fieldPath {path!r} is not supported")


def _data(obj: dict[str, Any], secret: bool) -> dict[str, str]:
    if secret:
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
    data = dict(obj.get("data") or {})
    for k, v in (obj.get("binaryData") or {}).items():
        data[k] = base64.b64decode(v).decode("utf-8", "replace")
    return data


def _key_ref(ref: dict[str, Any], ns: str, lookup: Lookup, secret: bool) -> str | None:
    obj = lookup(ns, ref["name"])
    kind = "secret" if secret else "configmap"
    if obj is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{kind} "{ref["name"]}" not found')
    data = _data(obj, secret)
    if ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind} {ns}/{ref['name']}")
    return data[ref["key"]]


def container_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    base: dict[str, str],
    pod_ip: str,
    host_ip: str,
    configmaps: Lookup,
    secrets: Lookup,
) -> dict[str, str]:
    """The full environment: base (PATH, HOME, service variables), envFrom, then env in order."""
    ns = pod["metadata"]["namespace"]
    env = dict(base)
    for src in container.get("envFrom") or []:
        secret = "secretRef" in src
        ref = src.get("secretRef") or src.get("configMapRef") or {}
        obj = (secrets if secret else configmaps)(ns, ref.get("name", ""))
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{"secret" if secret else "configmap"} "{ref.get("name")}" not found')
        for k, v in _data(obj, secret).items():
            env[src.get("prefix", "") + k] = v
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"], pod_ip, host_ip)
        elif "configMapKeyRef" in source:
            value = _key_ref(source["configMapKeyRef"], ns, configmaps, secret=False)
        elif "secretKeyRef" in source:
            value = _key_ref(source["secretKeyRef"], ns, secrets, secret=True)
        elif "resourceFieldRef" in source:
            value = _resource_value(container, source["resourceFieldRef"])
        else:
            raise ConfigError(f"env {name}: valueFrom {sorted(source)} is not supported")
        if value is not None:
            env[name] = value
    return env


def _resource_value(container: dict[str, Any], ref: dict[str, Any]) -> str:
    """limits.cpu and the like, as written in the spec ("0" when unset: no limit on this node)."""
    kind, _, res = ref["resource"].partition(".")
    return str(((container.get("resources") or {}).get(kind) or {}).get(res, "0"))


def command_line(container: dict[str, Any], entrypoint: list[str], env: dict[str, str]) -> list[str]:
    """command+args with $(VAR) expanded; the image entrypoint stands in for a missing command."""
    command = container.get("command") or entrypoint
    args = container.get("args") or []
    return [expand(a, env) for a in [*command, *args]]
