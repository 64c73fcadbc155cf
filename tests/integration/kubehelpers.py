"""Helpers for the integration tests: apply manifests, read objects, wait for conditions."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
CPU_IMAGE = "zoo-operator/workload-cpu:dev"


@dataclass
class Kube:
    """kubectl-based helpers bound to one cluster and namespace."""

    cluster: Any
    ns: str

    def apply(self, *objects: dict[str, Any]) -> None:
        """Apply objects into the test namespace."""
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.cluster.kubectl("apply", "-n", self.ns, "-f", "-", input=json.dumps(doc))

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """An object of the namespace, or None when it does not exist."""
        out = self.cluster.kubectl("get", kind, name, "-n", self.ns, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def logs(self, pod: str, *args: str) -> str:
        """kubectl logs through the API server."""
        return self.cluster.kubectl("logs", "-n", self.ns, pod, *args).stdout

    def pod_phase(self, name: str) -> str | None:
        """The pod's phase (None when missing)."""
        pod = self.get("pod", name)
        return None if pod is None else pod.get("status", {}).get("phase")

    def pod_summary(self, name: str) -> str:
        """The pod's phase and each (init) container's state with its reason and message, for failure reports."""
        pod = self.get("pod", name)
        if pod is None:
            return f"pod {name} does not exist"
        status = pod.get("status") or {}
        parts = [f"pod {name} phase={status.get('phase')}"]
        for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            for state, info in (c.get("state") or {}).items():
                detail = info.get("reason") or ""
                if "exitCode" in info:
                    detail += f" exit={info['exitCode']}"
                if info.get("message"):
                    detail += f" {info['message']!r}"
                parts.append(f"{c['name']}: {state} {detail}".rstrip())
        return "; ".join(parts)


def wait_for(
    what: str,
    fn: Callable[[], T | None],
    timeout: float = 60,
    interval: float = 0.5,
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll fn until it returns something truthy; fail naming `what` (and, given explain, what it says about
    the state things got stuck in) after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    detail = f"; {explain()}" if explain else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r}){detail}")


def python_pod(name: str, code: str, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    """A pod whose one container runs `python3 -c code` from the mapped CPU workload image."""
    container = {"name": "main", "image": CPU_IMAGE, "command": ["python3", "-c", code]}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": spec.pop("labels", {})},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 5,
            "containers": [container],
            **spec,
        },
    }
