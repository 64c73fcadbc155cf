"""Size, shape and reference limits of a job's spec that the CRD cannot state, or that must also hold where the
CRD is not the gate (`zoo-operator render`, a CRD installed by hand). Pure: spec dicts in, messages out.

Each message names the field and the limit. spec.parse calls `problems` once and adds what it returns.
What each limit defends against is in docs/security.md.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

import yaml

from zoo_operator import memlimits
from zoo_workloads import config as model_config

# The CRD's own bounds on podTemplate (schema.py), repeated here so a spec that did not pass the CRD meets the
# same ones; tests/unit/test_hostile_input.py checks the two agree.
MAX_ENV_ENTRIES = 256
MAX_VOLUMES = 64
MAX_VOLUME_MOUNTS = 64
MAX_TOLERATIONS = 64
MAX_NODE_SELECTOR = 64

MAX_ENV_VALUE = 32768
"""Characters of one podTemplate.env value (the CRD's maxLength)."""
MAX_ENV_BYTES = 128 * 1024
"""Bytes of all podTemplate.env names and values together. Linux refuses exec when one env string exceeds
MAX_ARG_STRLEN (128 KiB) and when environment plus arguments exceed ARG_MAX (2 MiB by default); a pod that
cannot exec fails with "argument list too long" after it was scheduled. The limit keeps far clear of both."""
MAX_HYPERPARAMETER_BYTES = 64 * 1024
"""Bytes of spec.hyperparameters as JSON: every value becomes a `--set` argument of the rank's command."""
MAX_VALUE_DEPTH = 3
"""Nesting of lists and maps inside one hyperparameter value (the deepest declared kind is a flat list)."""
CHECKPOINT_HYPERPARAMETERS = ("pretrained", "resume")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
FROM_KEYS = ("job", "checkpoint")


def _depth(value: Any) -> int:
    if isinstance(value, Mapping):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))


def normal_path(text: str) -> str:
    """A path with `.` and repeated `/` removed (posixpath.normpath); `..` is refused before this is used."""
    return posixpath.normpath(text)


def path_problem(field: str, text: str, *, relative_only: bool) -> str | None:
    """Why a checkpoint path may not be used: NUL, a `..` component, or (relative_only) absolute."""
    if "\x00" in text:
        return f"{field}: must not contain a NUL character"
    if ".." in text.split("/"):
        return f"{field}: must not contain '..' components (a path stays inside its volume)"
    if relative_only and text.startswith("/"):
        return f"{field}: must be a relative path inside the volume (no leading /)"
    return None


def _yaml_problem(field: str, text: str) -> str | None:
    """A string read the way the workload reads a `--set` value (zoo_workloads.config.parse_value: JSON, else
    YAML): anchors, aliases or deep nesting refused, as the workload's loader refuses them."""
    try:
        model_config.parse_value(text)
    except model_config.UnsafeYAML as err:
        return f"{field}: {err}"
    except yaml.YAMLError:
        return None  # not YAML at all: a plain string
    return None


def hyperparameter_problems(params: Mapping[str, Any]) -> list[str]:
    """Size, depth, YAML and path limits of spec.hyperparameters."""
    out: list[str] = []
    total = _size(params)
    if total > MAX_HYPERPARAMETER_BYTES:
        out.append(
            f"spec.hyperparameters: too large ({total} bytes as JSON): must be at most "
            f"{MAX_HYPERPARAMETER_BYTES}"
        )
    for key, value in params.items():
        field = f"spec.hyperparameters.{str(key)[:80]}"
        if _depth(value) > MAX_VALUE_DEPTH:
            out.append(f"{field}: nested deeper than {MAX_VALUE_DEPTH} levels")
        if isinstance(value, str):
            problem = _yaml_problem(field, value)
            if problem is None and key in CHECKPOINT_HYPERPARAMETERS:
                problem = path_problem(field, value, relative_only=False)
            if problem:
                out.append(problem)
    return out


def pod_template_problems(template: Mapping[str, Any]) -> list[str]:
    """Counts of podTemplate entries and the size of its env."""
    out: list[str] = []
    counts = {
        "env": MAX_ENV_ENTRIES,
        "volumes": MAX_VOLUMES,
        "volumeMounts": MAX_VOLUME_MOUNTS,
        "tolerations": MAX_TOLERATIONS,
        "nodeSelector": MAX_NODE_SELECTOR,
    }
    for key, limit in counts.items():
        value = template.get(key)
        if isinstance(value, (list, Mapping)) and len(value) > limit:
            out.append(f"spec.podTemplate.{key}: {len(value)} entries: must be at most {limit}")
    env = template.get("env")
    if isinstance(env, list):
        total = 0
        for i, var in enumerate(env):
            if not isinstance(var, Mapping):
                continue
            value = var.get("value")
            if isinstance(value, str) and len(value) > MAX_ENV_VALUE:
                # The name, never the value: env values may be secrets (DESIGN.md).
                out.append(
                    f"spec.podTemplate.env[{i}].value: too long ({len(value)} characters): must be at most "
                    f"{MAX_ENV_VALUE}"
                )
            total += len(str(var.get("name", "")).encode()) + len(str(value or "").encode())
        if total > MAX_ENV_BYTES:
            out.append(
                f"spec.podTemplate.env: {total} bytes of names and values: must be at most {MAX_ENV_BYTES}"
            )
    return out


def from_problems(source: Mapping[str, Any]) -> list[str]:
    """spec.from names a job of this namespace only: no namespace key, no `ns/name` spelling."""
    out: list[str] = []
    for key in source:
        if key not in FROM_KEYS:
            hint = (
                " (cross-namespace references are not allowed: spec.from names a job in this namespace)"
                if key == "namespace"
                else ""
            )
            out.append(f"spec.from.{str(key)[:40]}: unknown field; allowed: {', '.join(FROM_KEYS)}{hint}")
    job = source.get("job")
    if isinstance(job, str) and job and not (len(job) <= 253 and _DNS_SUBDOMAIN.match(job)):
        out.append(
            "spec.from.job: must be the name of a ZooTrainingJob in this namespace (a DNS subdomain name, "
            "at most 253 characters; no namespace/ prefix)"
        )
    return out


def checkpoint_problems(ckpt: Mapping[str, Any]) -> list[str]:
    """spec.checkpoint.path and resumeFrom: NUL refused (the `..` and absolute rules are spec.parse's own)."""
    return [
        f"spec.checkpoint.{key}: must not contain a NUL character"
        for key in ("path", "resumeFrom")
        if isinstance(ckpt.get(key), str) and "\x00" in ckpt[key]
    ]


def problems(spec: Mapping[str, Any]) -> list[str]:
    """Every limit above, for the spec of a ZooTrainingJob (its `spec` mapping as the apiserver returns it)."""
    out: list[str] = []
    params = spec.get("hyperparameters")
    if isinstance(params, Mapping):
        out += hyperparameter_problems(params)
    template = spec.get("podTemplate")
    if isinstance(template, Mapping):
        out += pod_template_problems(template)
    source = spec.get("from")
    if isinstance(source, Mapping):
        out += from_problems(source)
    ckpt = spec.get("checkpoint")
    if isinstance(ckpt, Mapping):
        out += checkpoint_problems(ckpt)
    resources = spec.get("resources")
    if isinstance(resources, Mapping):
        out += memlimits.problems(resources)
    return out
