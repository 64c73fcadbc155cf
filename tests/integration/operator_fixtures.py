"""Fixtures of the operator's integration tests: the CRD installed once, and a real operator process.

The operator runs as `zoo-operator run` (the same entry point the Deployment uses) with KUBECONFIG pointing at the
test cluster, watching only the test's namespace, so tests cannot see each other's jobs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubehelpers import wait_for

CRD_NAME = "zootrainingjobs.modelzoo.io"
READY_LINE = "Activity 'start' succeeded"


@pytest.fixture(scope="session")
def ztj_crd(cluster: Any) -> Any:
    """The cluster with the ZooTrainingJob CRD installed from manifests/base/crd.yaml and Established."""
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        str(cluster.repo / "manifests" / "base" / "crd.yaml"),
    )
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    # The apiserver serves a new CRD's discovery a moment after Established; kubectl needs it.
    wait_for(
        "ztj discovery", lambda: cluster.kubectl("get", "ztj", "-A", check=False).returncode == 0, timeout=30
    )
    return cluster


class OperatorProcess:
    """A `zoo-operator run` subprocess; start/stop to test restarts."""

    def __init__(
        self, cluster: Any, namespace: str, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.cluster, self.namespace, self.log_path = cluster, namespace, log_path
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the operator (watching only the test namespace)."""
        env = {
            **self.cluster.env,
            "ZOO_WATCH_NAMESPACES": self.namespace,
            "ZOO_STATUS_INTERVAL_SECONDS": "1",
            "ZOO_HEALTH_PORT": "0",
            "ZOO_LOG_TAIL_LINES": "5",
            **self.extra_env,
        }
        exe = Path(sys.executable).parent / "zoo-operator"
        started_before = self._log().count(READY_LINE)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([str(exe), "run"], stdout=log, stderr=subprocess.STDOUT, env=env)
        # Importing kopf and the client takes seconds (minutes on a loaded machine): wait for the startup
        # handler, so test timeouts measure the operator's work, not its start.
        deadline = time.monotonic() + 240
        while self._log().count(READY_LINE) == started_before:
            if self.proc.poll() is not None:
                pytest.fail(f"zoo-operator run exited {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"zoo-operator run did not start within 240 s:\n{self.log_tail()}")
            time.sleep(0.5)

    def _log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """Kill the operator (SIGKILL): no cleanup, as when its node dies."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        """Stop the operator gracefully (SIGTERM), killing it if it hangs."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self, lines: int = 60) -> str:
        """The end of the operator's log (printed when a test fails)."""
        return "\n".join(self._log().splitlines()[-lines:])


@pytest.fixture
def operator(ztj_crd: Any, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """A running operator for the test's namespace; its log tail is printed at teardown (shown on failure)."""
    op = OperatorProcess(ztj_crd, namespace, tmp_path / "operator.log")
    try:
        op.start()
        yield op
    finally:
        op.stop()
        print(f"--- operator log ({op.log_path}) ---\n{op.log_tail()}")


def tiny_images(tmp_path: Path) -> Path:
    """A tiny imagefolder dataset (3 classes x 4 images, 32 px) under tmp_path/data, made by zoo-data."""
    data = tmp_path / "data"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "zoo-data"),
            "synth",
            "--layout",
            "imagefolder",
            "--out",
            str(data),
            "--classes",
            "3",
            "--per-class",
            "4",
            "--size",
            "32",
        ],
        check=True,
        timeout=120,
    )
    return data


def cpu_job(name: str, **spec: Any) -> dict[str, Any]:
    """A small CPU job; keyword arguments replace spec fields."""
    body: dict[str, Any] = {
        "apiVersion": "modelzoo.io/v1alpha1",
        "kind": "ZooTrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "resnet50_bam",
            "image": "zoo-operator/workload-cpu:dev",
            "device": {"type": "CPU"},
            "replicas": 2,
            "dataset": {"volume": {"emptyDir": {}}, "trainPath": "train", "numClasses": 3},
            "hyperparameters": {"epochs": 1, "batch_size": 2},
        },
    }
    body["spec"].update(spec)
    return body


def apply(
    cluster: Any, namespace: str, body: dict[str, Any], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """kubectl apply one object into the namespace."""
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body), check=check)


def get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    """One object, or None."""
    out = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def items(cluster: Any, namespace: str, kind: str, selector: str) -> list[dict[str, Any]]:
    """Objects of a kind matching a label selector."""
    out = cluster.kubectl("get", kind, "-n", namespace, "-l", selector, "-o", "json")
    return json.loads(out.stdout)["items"]


def job_status(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    """The job's status ({} when it has none yet)."""
    body = get(cluster, namespace, "ztj", name)
    return (body or {}).get("status") or {}


def wait_phase(
    cluster: Any,
    namespace: str,
    name: str,
    phases: set[str],
    timeout: float = 90,
    explain: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """Wait until the job's phase is one of `phases`; returns the status. On timeout the failure names the job's
    last phase, reason and message, and whatever `explain` adds."""
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        nonlocal last
        last = job_status(cluster, namespace, name)
        return last if last.get("phase") in phases else None

    def why() -> str:
        said = f"job {name} last {last.get('phase')}/{last.get('reason')}: {last.get('message')}"
        return f"{said}; {explain()}" if explain else said

    return wait_for(
        f"job {name} phase in {sorted(phases)}", check, timeout=timeout, interval=1.0, explain=why
    )


def events(cluster: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    """Events about the job."""
    out = cluster.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name={name},involvedObject.kind=ZooTrainingJob",
        "-o",
        "json",
    )
    return json.loads(out.stdout)["items"]
