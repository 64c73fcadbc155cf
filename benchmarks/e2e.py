"""End-to-end timings of the demo job on the local cluster, through the chart-installed operator.

Measures, for hack/demo/job.yaml (2 CPU ranks, reduced resnet50_bam on digits):
- seconds from `kubectl apply` to every pod of the job Running,
- seconds from `kubectl apply` to the first training step (the `ts` of the earliest `step` event in any rank's log),
- seconds from `kubectl apply` to phase Succeeded (as seen by polling),
- status writes per job-minute: changes of `.status` seen by a watch on the job (`kubectl get -w`), divided by
  the minutes from apply to Succeeded (metadata-only updates, e.g. kopf's annotations, are not counted).

Usage: `.venv/bin/python benchmarks/e2e.py [--json OUT]` with KUBECONFIG pointing at the local cluster (default:
hack/cluster/zoo-cluster up, which reuses a running one). It installs its own Helm release watching a fresh
namespace, writes the digits to /tmp/zoo-data/digits when missing, and removes the release and namespace at
the end. Pure helpers (`first_step_ts`, `status_changes`, `summarize`) are unit-tested.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
JOB = "bench"


def first_step_ts(log_texts: Iterable[str]) -> float | None:
    """The earliest `ts` of a `step` event in any of the logs (contract JSON lines), or None."""
    best = None
    for text in log_texts:
        for line in text.splitlines():
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if (
                isinstance(event, dict)
                and event.get("event") == "step"
                and isinstance(event.get("ts"), (int, float))
            ):
                best = event["ts"] if best is None else min(best, event["ts"])
    return best


def status_changes(objects: Iterable[dict[str, Any]]) -> int:
    """How many successive versions of an object (as a watch delivers them) changed its `.status`."""
    count, last = 0, None
    for obj in objects:
        status = obj.get("status")
        if status is not None and status != last:
            count += 1
        last = status
    return count


def summarize(
    applied: float, running: float | None, first_step: float | None, succeeded: float | None, writes: int
) -> dict[str, Any]:
    """The benchmark's numbers from wall-clock instants (unix seconds)."""

    def since(t: float | None) -> float | None:
        return None if t is None else round(t - applied, 1)

    minutes = None if succeeded is None else (succeeded - applied) / 60
    return {
        "apply_to_all_pods_running_s": since(running),
        "apply_to_first_step_s": since(first_step),
        "apply_to_succeeded_s": since(succeeded),
        "status_writes": writes,
        "status_writes_per_job_minute": None if not minutes else round(writes / minutes, 2),
    }


class Kube:
    """kubectl/helm with the benchmark's KUBECONFIG."""

    def __init__(self, kubeconfig: str) -> None:
        self.env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "PATH": f"{REPO / '.cache' / 'bin'}:{os.environ['PATH']}",
        }

    def run(self, *cmd: str, input: str | None = None, check: bool = True) -> str:
        """Run a command; its stdout."""
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=self.env, timeout=600, check=False
        )
        if check and proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)}: {proc.stderr.strip()}")
        return proc.stdout


class Watch:
    """`kubectl get ztj JOB -w -o json`, keeping every version of the object it delivers."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.versions: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [
                "kubectl",
                "-n",
                namespace,
                "get",
                "ztj",
                "-w",
                "-o",
                "json",
                "--field-selector",
                f"metadata.name={JOB}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=kube.env,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        decoder, buf = json.JSONDecoder(), ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            buf += line
            try:
                obj, end = decoder.raw_decode(buf.lstrip())
            except ValueError:
                continue
            buf = buf.lstrip()[end:]
            self.versions.append(obj)

    def stop(self) -> list[dict[str, Any]]:
        """Stop watching; every version seen."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)
        return self.versions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def _kubeconfig() -> str:
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    out = subprocess.run(
        [str(REPO / "hack" / "cluster" / "zoo-cluster"), "up"], capture_output=True, text=True, check=True
    ).stdout
    return next(ln.split("=", 1)[1] for ln in out.splitlines() if ln.strip().startswith("export KUBECONFIG="))


def measure(kube: Kube, namespace: str, data: Path, timeout: float) -> dict[str, Any]:
    """Apply the demo job and time it; the summary."""
    job = yaml.safe_load((REPO / "hack" / "demo" / "job.yaml").read_text())
    job["metadata"]["name"] = JOB
    job["spec"]["dataset"]["volume"]["hostPath"]["path"] = str(data)
    watch = Watch(kube, namespace)
    time.sleep(1)  # the watch is established before the job exists
    kube.run("kubectl", "-n", namespace, "apply", "-f", "-", input=json.dumps(job))
    applied = time.time()
    running = succeeded = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and succeeded is None:
        pods = json.loads(
            kube.run(
                "kubectl", "-n", namespace, "get", "pods", "-l", f"modelzoo.io/job-name={JOB}", "-o", "json"
            )
        )["items"]
        if running is None and len(pods) == 3 and all(p["status"].get("phase") == "Running" for p in pods):
            running = time.time()
        phase = kube.run("kubectl", "-n", namespace, "get", "ztj", JOB, "-o", "jsonpath={.status.phase}")
        if phase == "Failed":
            raise SystemExit(
                f"the job failed: {kube.run('kubectl', '-n', namespace, 'get', 'ztj', JOB, '-o', 'yaml')}"
            )
        if phase == "Succeeded":
            succeeded = time.time()
        time.sleep(0.5)
    logs = [
        kube.run("kubectl", "-n", namespace, "logs", f"{JOB}-worker-{i}", "--tail=-1", check=False)
        for i in (0, 1)
    ]
    time.sleep(2)
    writes = status_changes(watch.stop())
    result = summarize(applied, running, first_step_ts(logs), succeeded, writes)
    status = json.loads(kube.run("kubectl", "-n", namespace, "get", "ztj", JOB, "-o", "json"))["status"]
    result["top1"] = (status.get("result") or {}).get("top1")
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark once and print its numbers (and write them as JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--data", default="/tmp/zoo-data/digits", help="digits dataset directory")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args(argv)
    kube = Kube(_kubeconfig())
    data = Path(args.data)
    if not (data / "train").is_dir():
        subprocess.run([str(BIN / "zoo-data"), "digits", "--out", str(data)], check=True)
    tag = secrets.token_hex(3)
    namespace, release = f"bench-{tag}", f"zoo-bench-{tag}"
    kube.run("kubectl", "create", "namespace", namespace)
    has_crd = kube.run("kubectl", "get", "crd", "zootrainingjobs.modelzoo.io", check=False) != ""
    kube.run(
        "helm",
        "install",
        release,
        str(REPO / "charts" / "zoo-operator"),
        "-n",
        namespace,
        "--set",
        f"fullnameOverride={release}",
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--set",
        f"health.port={_free_port()}",
        "--set",
        f"crds.enabled={str(not has_crd).lower()}",
        "--wait",
        "--timeout",
        "5m",
    )
    try:
        kube.run("kubectl", "-n", namespace, "rollout", "status", f"deployment/{release}", "--timeout=180s")
        while kube.run("kubectl", "-n", namespace, "get", "serviceaccount", "default", check=False) == "":
            time.sleep(0.2)
        result = measure(kube, namespace, data, args.timeout)
    finally:
        kube.run(
            "kubectl", "-n", namespace, "delete", "ztj", JOB, "--wait=true", "--timeout=120s", check=False
        )
        kube.run("helm", "uninstall", release, "-n", namespace, check=False)
        kube.run("kubectl", "delete", "namespace", namespace, "--wait=false", check=False)
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
