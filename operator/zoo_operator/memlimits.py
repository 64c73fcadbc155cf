"""Memory requests and limits of the rank containers, and the /dev/shm that fits inside them. Pure functions.

Defaults come from the workload's one table (zoo_workloads.config.rank_memory, per model and device type);
spec.resources.requests.memory / limits.memory override them. A memory-backed emptyDir is charged to the pod's
memory cgroup ("files you write count against your container's memory limit",
https://kubernetes.io/docs/concepts/storage/volumes/#emptydir), so /dev/shm gets at most SHM_FRACTION of the
limit, leaving the rest to the process: a full /dev/shm then fails a write (ENOSPC) instead of OOM-killing the rank.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from zoo_workloads import config as model_config

SHM_FRACTION = Decimal(1) / 2
"""Most of the memory limit /dev/shm may take (and its size when the platform sets none)."""

_SUFFIX: dict[str, Decimal | int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$"
)


def parse_quantity(value: Any) -> Decimal:
    """A Kubernetes quantity (`64Gi`, `512M`, `1e9`, 1024) as a number; ValueError on anything else
    (the grammar of k8s.io/apimachinery resource.Quantity)."""
    text = "" if isinstance(value, bool) or not isinstance(value, (int, float, str)) else str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    number, exponent, suffix = match.groups()
    scale = Decimal(10) ** int(exponent) if exponent else Decimal(_SUFFIX[suffix or ""])
    return Decimal(number) * scale


def format_bytes(value: Decimal) -> str:
    """Bytes as the largest binary suffix that divides them (`32Gi`, `768Mi`, else plain bytes)."""
    whole = int(value)
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIX[suffix])
        if whole >= unit and whole % unit == 0:
            return f"{whole // unit}{suffix}"
    return str(whole)


def container_memory(
    model: str, device_type: str, resources: Mapping[str, Any], *, scheduler: bool = False
) -> tuple[str, str]:
    """(request, limit) of a rank container's memory: spec.resources where set, else the table's default.
    A limit set alone caps the default request; a request set alone above the default limit raises the limit
    to it (Kubernetes refuses a request above the limit)."""
    default_req, default_lim = (
        model_config.SCHEDULER_MEMORY if scheduler else model_config.rank_memory(model, device_type)
    )
    req = (resources.get("requests") or {}).get("memory")
    lim = (resources.get("limits") or {}).get("memory")
    if req is None and lim is None:
        return default_req, default_lim
    if req is None:
        req = lim if parse_quantity(lim) < parse_quantity(default_req) else default_req
    if lim is None:
        lim = req if parse_quantity(req) > parse_quantity(default_lim) else default_lim
    return str(req), str(lim)


def shm_size(platform_size: str, memory_limit: str) -> str:
    """sizeLimit of the memory-backed /dev/shm: the platform's size (ZOO_ASCEND_SHM_SIZE), at most
    SHM_FRACTION of the container's memory limit; that fraction when the platform sets none."""
    cap = parse_quantity(memory_limit) * SHM_FRACTION
    if platform_size and parse_quantity(platform_size) <= cap:
        return platform_size
    return format_bytes(cap)


def problems(resources: Mapping[str, Any]) -> list[str]:
    """What is wrong with spec.resources' memory: not a quantity, not positive, or a request above the limit."""
    out: list[str] = []
    values: dict[str, Decimal] = {}
    for part in ("requests", "limits"):
        raw = (resources.get(part) or {}).get("memory") if isinstance(resources.get(part), Mapping) else None
        if raw is None:
            continue
        try:
            values[part] = parse_quantity(raw)
        except ValueError:
            out.append(f"spec.resources.{part}.memory: {str(raw)[:64]!r} is not a quantity (e.g. 16Gi)")
            continue
        if values[part] <= 0:
            out.append(f"spec.resources.{part}.memory: must be > 0")
    if "requests" in values and "limits" in values and values["requests"] > values["limits"]:
        out.append("spec.resources.requests.memory: must not exceed spec.resources.limits.memory")
    return out
