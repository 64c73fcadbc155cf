"""Helpers for the chart tests: run helm from .cache/bin and look objects up in its output.

Not a test module (no test_ prefix); the chart tests import it by name (pytest puts tests/unit on sys.path).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "zoo-operator"
HELM = os.environ.get("HELM") or str(REPO / ".cache" / "bin" / "helm")
RELEASE = "zoo-operator"
NAMESPACE = "zoo-system"

_SOURCE = re.compile(r"^# Source: (\S+)", re.MULTILINE)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm with `args`; with check, a failure raises with helm's stderr in the message."""
    proc = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def set_args(values: dict[str, str] | None) -> list[str]:
    """`--set k=v` arguments for a flat mapping of dotted keys."""
    out: list[str] = []
    for key, value in (values or {}).items():
        out += ["--set", f"{key}={value}"]
    return out


def template_text(values: dict[str, str] | None = None, *extra: str) -> str:
    """The chart rendered by `helm template` with these --set values (cached: the chart does not change
    during a test run, and helm takes a while on a busy machine)."""
    return _template_text(tuple(sorted((values or {}).items())), extra)


@functools.cache
def _template_text(values: tuple[tuple[str, str], ...], extra: tuple[str, ...]) -> str:
    return helm(
        "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *set_args(dict(values)), *extra
    ).stdout


def template(values: dict[str, str] | None = None, *extra: str) -> list[dict[str, Any]]:
    """The chart's rendered objects (each with a "_source" key naming its template file)."""
    objects = []
    for chunk in template_text(values, *extra).split("\n---\n"):
        doc = yaml.safe_load(chunk)
        if not doc:
            continue
        match = _SOURCE.search(chunk)
        doc["_source"] = match.group(1) if match else ""
        objects.append(doc)
    return objects


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Every object of `kind` (and `name`, when given)."""
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of `kind` (and `name`); fails when there is not exactly one."""
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The operator Deployment's only container."""
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The operator container's environment as a name -> value mapping; a fieldRef shows as `fieldRef:<path>`."""
    return {
        e["name"]: e["value"] if "value" in e else f"fieldRef:{e['valueFrom']['fieldRef']['fieldPath']}"
        for e in container(objects)["env"]
    }


def rules_as_set(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """RBAC rules flattened to (apiGroup, resource, verb) triples, so tests compare grants, not layout."""
    return {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
