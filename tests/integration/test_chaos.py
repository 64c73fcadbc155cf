"""Chaos (issue 24): 20 small CPU jobs while the operator is SIGKILLed and restarted 4 times and the apiserver is
restarted twice, at seeded-random points of the jobs' lifetime.

Every job must reach its own terminal phase (14 train and succeed; 6 name a pretrained checkpoint that does not
exist, so their ranks exit 64, a permanent ConfigError, and the job fails), with 0 duplicate pods, 0 status
regressions (chaos_checks.Ledger, fed by a poll of the namespace every second that shrugs off the apiserver being
down) and 0 objects left once the jobs are deleted. Half the jobs are created while the operator is down.

ZOO_CHAOS_SEED picks the schedule (default 24; the seed and the schedule are printed, so a failure can be
replayed). Needs the suite's own local cluster: the apiserver is restarted with `zoo-cluster restart-apiserver`.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chaos_checks import Ledger, unowned
from kubehelpers import wait_for
from operator_fixtures import OperatorProcess, apply, cpu_job, tiny_images

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("ZOO_CHAOS_SEED", "24"))
# The reduced model of the other CPU tests (width 8, one block per stage, 32 px, PyNative: no graph compile).
TINY = {
    "width": 8,
    "layers": [1, 1, 1, 1],
    "image_size": 32,
    "epochs": 1,
    "steps_per_epoch": 2,
    "batch_size": 2,
    "mode": "pynative",
}
MISSING_CHECKPOINT = "/nonexistent/chaos/pretrained.ckpt"
KINDS = "pods,services,configmaps,networkpolicies"


@dataclass(frozen=True)
class Case:
    name: str
    replicas: int
    succeeds: bool


CASES = (
    [Case(f"ok-{i}", 1, True) for i in range(11)]
    + [Case(f"ok2-{i}", 2, True) for i in range(3)]
    + [Case(f"bad-{i}", 1, False) for i in range(5)]
    + [Case("bad2-0", 2, False)]
)


def body(case: Case, data: Path) -> dict[str, Any]:
    hyper = dict(TINY) if case.succeeds else {**TINY, "pretrained": MISSING_CHECKPOINT}
    return cpu_job(
        case.name,
        replicas=case.replicas,
        hyperparameters=hyper,
        dataset={"volume": {"hostPath": {"path": str(data)}}, "trainPath": "train", "numClasses": 3},
        runPolicy={"backoffLimit": 0},
    )


class Poller(threading.Thread):
    """Feeds a Ledger a snapshot of the namespace's pods and jobs every second; a failed read (the apiserver is
    down) is counted and skipped."""

    def __init__(self, cluster: Any, namespace: str, started: float) -> None:
        super().__init__(name="chaos-poller", daemon=True)
        self.cluster, self.namespace, self.started = cluster, namespace, started
        self.ledger = Ledger()
        self.failed_reads = 0
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                out = self.cluster.kubectl(
                    "get", "pods,ztj", "-n", self.namespace, "-o", "json", check=False, timeout=20
                )
                items = json.loads(out.stdout)["items"] if out.returncode == 0 else None
            except (subprocess.TimeoutExpired, ValueError, KeyError):
                items = None
            with self.lock:
                if items is None:
                    self.failed_reads += 1
                else:
                    self.ledger.record(items, time.monotonic() - self.started)
            self.halt.wait(1.0)

    def phases(self) -> dict[str, str | None]:
        with self.lock:
            return {name: state.phase for name, state in self.ledger.states.items()}


def schedule(rng: random.Random) -> list[tuple[float, str, float]]:
    """(seconds after the first jobs, action, parameter): 4 operator kills (parameter: seconds it stays down) and
    2 apiserver restarts (seconds down), spread over the jobs' lifetime, at least 8 s apart."""
    while True:
        kills = [(rng.uniform(4, 130), "kill-operator", rng.uniform(0.5, 6)) for _ in range(4)]
        restarts = [(rng.uniform(10, 110), "restart-apiserver", rng.uniform(2, 8)) for _ in range(2)]
        plan = sorted(kills + restarts)
        if all(b[0] - a[0] >= 8 for a, b in itertools.pairwise(plan)):
            return plan


def restart_apiserver(down_seconds: float) -> None:
    from zoocluster import config as cluster_config

    env = cluster_config.suite_env(dict(os.environ))
    proc = subprocess.run(
        [
            str(REPO / "hack" / "cluster" / "zoo-cluster"),
            "restart-apiserver",
            "--down-seconds",
            f"{down_seconds}",
        ],
        capture_output=True,
        text=True,
        env={**env, "ZOO_PYTHON": sys.executable},
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, f"restart-apiserver failed:\n{proc.stdout}\n{proc.stderr}"
    print(proc.stdout.strip())


def test_jobs_survive_operator_kills_and_apiserver_restarts(
    ztj_crd: Any, namespace: str, tmp_path: Path
) -> None:
    if os.environ.get("ZOO_TEST_KUBECONFIG"):
        pytest.skip("restarts the apiserver: needs the suite's own local cluster, not ZOO_TEST_KUBECONFIG's")
    cluster = ztj_crd
    data = tiny_images(tmp_path)
    rng = random.Random(SEED)
    plan = schedule(rng)
    print(f"chaos seed {SEED}: " + ", ".join(f"{what}@{at:.0f}s(down {p:.1f}s)" for at, what, p in plan))
    shuffled = list(CASES)
    rng.shuffle(shuffled)
    first, second = shuffled[:10], shuffled[10:]

    op = OperatorProcess(cluster, namespace, tmp_path / "operator.log")
    op.start()
    try:
        run_chaos(cluster, namespace, data, op, plan, first, second)
    finally:
        op.stop()
        print(f"--- operator log ({op.log_path}) ---\n{op.log_tail()}")


def run_chaos(
    cluster: Any,
    namespace: str,
    data: Path,
    op: OperatorProcess,
    plan: list[tuple[float, str, float]],
    first: list[Case],
    second: list[Case],
) -> None:
    """The chaos, the checks, then the jobs deleted with the operator still running (it must not recreate
    anything of a job being deleted)."""
    started = time.monotonic()
    poller = Poller(cluster, namespace, started)
    poller.start()
    try:
        for case in first:
            apply(cluster, namespace, body(case, data))
        kills = 0
        for at, what, param in plan:
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            if what == "restart-apiserver":
                assert op.proc is not None and op.proc.poll() is None, op.log_tail()
                restart_apiserver(param)
                continue
            op.kill()
            kills += 1
            if kills == 1:  # half the jobs arrive while no operator runs
                for case in second:
                    apply(cluster, namespace, body(case, data))
            time.sleep(param)
            op.start()
        print(f"chaos over at {time.monotonic() - started:.0f}s; operator restarts {kills}")

        def finished() -> bool:
            phases = poller.phases()
            return all(phases.get(c.name) in {"Succeeded", "Failed"} for c in CASES)

        wait_for(
            "every job to finish",
            finished,
            timeout=420,
            interval=2.0,
            explain=lambda: f"phases {poller.phases()}; operator log:\n{op.log_tail(30)}",
        )
        time.sleep(4)  # a few more snapshots: a finished job must stay finished
        assert op.proc is not None and op.proc.poll() is None, f"the operator exited:\n{op.log_tail()}"
        print(f"all finished at {time.monotonic() - started:.0f}s")
    finally:
        poller.halt.set()
        poller.join(timeout=30)
    ledger = poller.ledger
    print(f"{ledger.snapshots} snapshots, {poller.failed_reads} failed reads (apiserver down)")
    want = {c.name: "Succeeded" if c.succeeds else "Failed" for c in CASES}
    assert {n: ledger.terminal.get(n) for n in want} == want
    assert ledger.problems == [], "\n".join(ledger.problems)
    assert poller.failed_reads > 0, "the poller never saw the apiserver down: the restarts did not happen"
    jobs = json.loads(cluster.kubectl("get", "ztj", "-n", namespace, "-o", "json").stdout)["items"]
    for job in jobs:
        status, name = job["status"], job["metadata"]["name"]
        assert status.get("restarts", 0) == 0, (name, status)
        codes = {s["pod"]: s.get("exitCode") for s in status.get("rankSummaries", []) if s["rank"] >= 0}
        # A success: every rank exited 0. A failure: a rank exited 64 (its peers may have been stopped).
        if want[name] == "Succeeded":
            assert codes and set(codes.values()) == {0}, (name, codes)
        else:
            assert 64 in codes.values(), (name, codes, status.get("message"))
    # Every object of every job is the job's own (controller ownerReference), so deleting the jobs removes it.
    objects = json.loads(cluster.kubectl("get", KINDS, "-n", namespace, "-o", "json").stdout)["items"]
    uids = {j["metadata"]["name"]: j["metadata"]["uid"] for j in jobs}
    assert unowned(objects, uids) == []
    assert {
        o["metadata"]["labels"]["modelzoo.io/job-name"] for o in objects if o["kind"] == "Service"
    } == set(want), "a job has no Service"

    cluster.kubectl("delete", "ztj", "--all", "-n", namespace, "--wait=false")

    def left() -> list[str]:
        out = cluster.kubectl("get", KINDS, "-n", namespace, "-o", "json", check=False)
        if out.returncode != 0:
            return ["(namespace unreadable)"]
        names = [f"{o['kind']}/{o['metadata']['name']}" for o in json.loads(out.stdout)["items"]]
        return [n for n in names if n != "ConfigMap/kube-root-ca.crt"]

    wait_for(
        "no pod, Service, ConfigMap or NetworkPolicy left after deleting the jobs",
        lambda: not left(),
        timeout=180,
        interval=2.0,
        explain=lambda: f"left: {left()}",
    )
