"""Helpers of the end-to-end tests: one namespace watched by the chart-installed operator, jobs in it, waits.

Every e2e test shares one namespace (the operator's Helm release watches exactly that namespace), so tests tell
their objects apart by the job-name label and use distinct job names.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO_JOB = REPO / "hack" / "demo" / "job.yaml"
JOB_LABEL = "modelzoo.io/job-name"
FINISHED = {"Succeeded", "Failed"}


@dataclass
class E2E:
    """The cluster, the namespace the e2e operator watches, the datasets and the operator's release."""

    cluster: Any
    namespace: str
    release: str
    release_namespace: str
    data: dict[str, Path] = field(default_factory=dict)

    def kubectl(self, *args: str, **kw: Any) -> Any:
        """kubectl in the e2e namespace."""
        return self.cluster.kubectl("-n", self.namespace, *args, **kw)

    def apply(self, body: dict[str, Any], check: bool = True) -> Any:
        """kubectl apply one object (as a user would); returns the CompletedProcess."""
        return self.kubectl("apply", "-f", "-", input=json.dumps(body), check=check)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        out = self.kubectl("get", kind, name, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def status(self, job: str) -> dict[str, Any]:
        """The job's status ({} before the operator writes one)."""
        return ((self.get("ztj", job) or {}).get("status")) or {}

    def owned(self, job: str) -> dict[str, list[str]]:
        """Names of the job's pods, services and config maps (by the job-name label), live ones only."""
        out = self.kubectl("get", "pods,services,configmaps", "-l", f"{JOB_LABEL}={job}", "-o", "json")
        found: dict[str, list[str]] = {"Pod": [], "Service": [], "ConfigMap": []}
        for item in json.loads(out.stdout)["items"]:
            if not item["metadata"].get("deletionTimestamp"):
                found[item["kind"]].append(item["metadata"]["name"])
        return {kind: sorted(names) for kind, names in found.items()}

    def pods(self, job: str) -> list[dict[str, Any]]:
        """The job's pod objects."""
        out = self.kubectl("get", "pods", "-l", f"{JOB_LABEL}={job}", "-o", "json")
        return list(json.loads(out.stdout)["items"])

    def events(self, job: str) -> list[dict[str, Any]]:
        """Events about the job, in the order they were created (timestamps have whole seconds only; the
        operator posts each Event once, so the etcd revision in resourceVersion orders them)."""
        out = self.kubectl(
            "get",
            "events",
            "--field-selector",
            f"involvedObject.kind=ZooTrainingJob,involvedObject.name={job}",
            "-o",
            "json",
        )
        items = json.loads(out.stdout)["items"]
        return sorted(items, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def logs(self, pod: str) -> str:
        """The pod's whole log through the API server (kubectl logs)."""
        return str(self.kubectl("logs", pod, "--tail=-1").stdout)

    def wait_phase(
        self,
        job: str,
        phases: set[str],
        timeout: float,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        interval: float = 2.0,
    ) -> dict[str, Any]:
        """Poll the job until its phase is in `phases` (calling on_poll with each status); returns the status."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(job)
            if on_poll is not None:
                on_poll(status)
            if status.get("phase") in phases:
                return status
            time.sleep(interval)
        pytest.fail(
            f"job {job}: phase not in {sorted(phases)} after {timeout:.0f}s; last status:\n"
            f"{json.dumps(status, indent=1)[-4000:]}",
            pytrace=False,
        )


def wait_for(
    what: str,
    fn: Callable[[], Any],
    timeout: float,
    interval: float = 1.0,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll fn until it returns something truthy; fail naming `what` after timeout seconds, with what
    `explain` says of the state then."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    state = f"\n{explain()}" if explain is not None else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}){state}", pytrace=False)


def demo_job(name: str, data: Path) -> dict[str, Any]:
    """hack/demo/job.yaml (what `make demo` applies), renamed, reading the digits from `data`."""
    body = yaml.safe_load(DEMO_JOB.read_text())
    body["metadata"]["name"] = name
    body["spec"]["dataset"]["volume"]["hostPath"]["path"] = str(data)
    return dict(body)


def tiny_job(
    name: str,
    model: str,
    data: Path,
    *,
    replicas: int = 1,
    train: str = "train",
    evaluate: str | None = "val",
    classes: int = 3,
    **hyper: Any,
) -> dict[str, Any]:
    """A reduced model (width 8, one block per stage, 32 px, 2 steps, PyNative: no graph compile) on CPU."""
    params = {
        "width": 8,
        "layers": [1, 1, 1, 1],
        "image_size": 32,
        "epochs": 1,
        "steps_per_epoch": 2,
        "batch_size": 4,
        "mode": "pynative",
        **hyper,
    }
    dataset: dict[str, Any] = {
        "volume": {"hostPath": {"path": str(data), "type": "Directory"}},
        "trainPath": train,
        "numClasses": classes,
    }
    if evaluate:
        dataset["evalPath"] = evaluate
    return {
        "apiVersion": "modelzoo.io/v1alpha1",
        "kind": "ZooTrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": model,
            "device": {"type": "CPU"},
            "replicas": replicas,
            "dataset": dataset,
            "hyperparameters": params,
            "runPolicy": {"backoffLimit": 0},
        },
    }


def pod_processes(namespace: str, pod: str) -> list[int]:
    """PIDs of the local cluster's processes that run `pod` (their environment names the pod).

    The process kubelet runs containers as host processes with the pod's environment, so POD_NAME and
    POD_NAMESPACE (set by the operator through fieldRefs) identify them, as a container runtime's cgroup would.
    """
    want = {f"POD_NAME={pod}".encode(), f"POD_NAMESPACE={namespace}".encode()}
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if want <= env:
            pids.append(int(entry.name))
    return sorted(pids)


def kill_trainer_only(namespace: str, pod: str) -> int:
    """SIGKILL only the training process of `pod` (zoo-train, the child of the pod's zoo-launch), as a crash of
    that one process would end it; the pod and zoo-launch stay. Returns its PID."""
    pids = pod_processes(namespace, pod)
    for pid in pids:
        try:
            parent = _parent(pid)
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")[:2]
            parent_argv = (Path("/proc") / str(parent) / "cmdline").read_bytes().split(b"\0")[:2]
        except OSError:
            continue
        is_trainer = any(a.endswith(b"zoo-train") for a in argv)
        if is_trainer and parent in pids and any(a.endswith(b"zoo-launch") for a in parent_argv):
            os.kill(pid, signal.SIGKILL)
            return pid
    pytest.fail(f"no zoo-train child of zoo-launch in pod {namespace}/{pod} among {pids}", pytrace=False)


def _parent(pid: int) -> int:
    stat = (Path("/proc") / str(pid) / "stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state letter


def kill_training(namespace: str, pod: str) -> int:
    """SIGKILL the main process of `pod` (as an OOM kill of the container or a node fault would); returns its
    PID. The pod's top process (whose parent is not one of the pod's) is zoo-launch, supervising zoo-train (or
    zoo-train itself where ZOO_PROCESS_RESTARTS=0 made zoo-launch exec it); its children die with it."""
    pids = pod_processes(namespace, pod)
    for pid in pids:
        try:
            top = _parent(pid) not in pids
            cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        if top and b"zoo-train" in cmdline:
            os.kill(pid, signal.SIGKILL)
            return pid
    pytest.fail(f"no zoo-train process of pod {namespace}/{pod} among {pids}", pytrace=False)
