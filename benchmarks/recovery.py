"""Recovery after a fault, per fault and recovery level, on the local cluster (issue 23).

Copies of one 2-rank job (reduced resnet50_bam on digits, 3 epochs of 8 steps, a step checkpoint every 2 steps; CPU,
or the twin's fake Ascend NPUs for the hardware faults) run side by side in one namespace; each gets one fault at a
seeded random step of epoch 2:
- `inplace`: rank 1's training process SIGKILLed (the pod stays): zoo-launch restarts the gang's processes in place;
- `podloss`: rank 1's pod deleted: the operator recreates that pod alone (policy.replace_lost_pod), the others
  restart in place when the gang channel hears it fall silent, all resume from the step checkpoint;
- `nodeloss` (an Ascend job on the twin's fake NPUs, dynamic launch, perNode 1): the node of one rank lost
  (`zoo-cluster node-down`, the rank whose node holds no other pod of the job): once the node is NotReady the
  operator deletes that rank's pod alone and recreates it away from the node (policy.replace_faulty_ranks), the
  others restart in place; the fault's time is the node-down, so the row includes the node-lifecycle grace period;
- `npufault` (the same Ascend job): rank 1's NPU marked unhealthy (`zoo-cluster npu-fault NODE DEV`, the device
  plugin's ConfigMap mindx-dl-deviceinfo-<node>): rank 1's pod moved alone to a healthy NPU;
- `gang`: as before issue 23, for comparison: no in-place restart (spec.runPolicy.processRestarts 0) and no step
  checkpoints (save_checkpoint_seconds=0), rank 1's process SIGKILLed: whole-gang restart from the epoch checkpoint.
It prints per job: the fault, the level that recovered it, seconds from the fault to the first resumed training
step, steps of progress lost (status.resumes[].lostSteps), pods recreated, and the steps a resume from the newest
periodic checkpoint would have lost (`periodic_loss`: what the survivor's last words, lastwords.py, save). `--ranks
N` (default 2), `--every N` (the step-checkpoint interval of inplace and podloss, default 2), `--jobs` (a subset)
and `--logs DIR` (every pod's log, for a breakdown).

Usage: `.venv/bin/python benchmarks/recovery.py [--seed N] [--json OUT]` with KUBECONFIG pointing at the local
cluster (default: hack/cluster/zoo-cluster up, with its own ZOO_CLUSTER_* state dir and ports, and the node list
benchmarks/recovery-nodes.yaml unless ZOO_CLUSTER_NODES says otherwise: nodeloss and npufault need spare fake
Ascend nodes in their own pools, label zoo.local/recovery-pool). The operator is pinned to cpu-node-1, which no fault
takes down. Pure helpers (`first_resumed_step`, `pods_recreated`, `fault_steps`, `table`, `node_victim`,
`pool_nodes_needed`) are unit-tested.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EPOCHS, STEPS, EVERY = 3, 8, 2
JOBS = ("inplace", "podloss", "nodeloss", "npufault", "gang")
LEVEL = {
    "inplace": "process restart in place",
    "podloss": "lost pod recreated alone",
    "nodeloss": "lost rank moved alone",
    "npufault": "faulty rank moved alone",
    "gang": "whole gang (epoch ckpt)",
}
FAULT = {
    "inplace": "process killed",
    "podloss": "pod deleted",
    "nodeloss": "node lost",
    "npufault": "NPU unhealthy",
    "gang": "process killed",
}
# The Ascend jobs: each runs on its own pool of fake Ascend nodes (benchmarks/recovery-nodes.yaml), so a lost node
# holds no other job's pod.
HARDWARE = ("nodeloss", "npufault")
POOL_LABEL = "zoo.local/recovery-pool"
NODES_FILE = REPO / "benchmarks" / "recovery-nodes.yaml"
OPERATOR_NODE = "cpu-node-1"
ASCEND_IMAGE = "zoo-operator/workload-ascend:0.1.0"
DEVICE_ANNOTATION = "ascend.kubectl.kubernetes.io/ascend-910-configuration"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _events(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("ts"), (int, float)):
                out.append(event)
    return out


def first_resumed_step(log_texts: Iterable[str], fault_ts: float) -> float | None:
    """The `ts` of the first training step after the first `resume` event that followed the fault, over all
    the logs given (the old pods' and the new ones'), or None when training never resumed."""
    events = sorted((e for text in log_texts for e in _events(text)), key=lambda e: e["ts"])
    resumed = next((e["ts"] for e in events if e.get("event") == "resume" and e["ts"] > fault_ts), None)
    if resumed is None:
        return None
    return next((e["ts"] for e in events if e.get("event") == "step" and e["ts"] > resumed), None)


def periodic_loss(log_texts: Iterable[str], fault_ts: float) -> int | None:
    """Steps trained before the fault since the newest checkpoint written before it: what a resume from the
    periodic checkpoint loses (rank 0's `checkpoint` events carry global_step; `step` events their position).
    None when the logs show no step."""
    events = [e for text in log_texts for e in _events(text) if e["ts"] <= fault_ts]
    steps = [
        (e["epoch"] - 1) * e["steps_per_epoch"] + e["step"]
        for e in events
        if e.get("event") == "step"
        and all(type(e.get(k)) is int for k in ("epoch", "step", "steps_per_epoch"))
    ]
    if not steps:
        return None
    saved = [
        e["global_step"]
        for e in events
        if e.get("event") == "checkpoint" and type(e.get("global_step")) is int
    ]
    return max(steps) - max(saved, default=0)


def pods_recreated(before: dict[str, str], after: dict[str, str]) -> int:
    """Pods (name -> uid) that are new or have another uid after recovery."""
    return sum(1 for name, uid in after.items() if before.get(name) != uid)


def fault_steps(seed: int, jobs: Iterable[str], low: int = 2, high: int = STEPS - 2) -> dict[str, int]:
    """The seeded random step of epoch 2 at which each job is disrupted."""
    rng = random.Random(seed)
    return {job: rng.randint(low, high) for job in jobs}


def node_victim(pods: dict[str, str | None]) -> tuple[str, str] | None:
    """(pod, node) for the node-loss fault: the highest-index worker whose node runs no other pod of the job (not
    the scheduler's, not another rank's), so that losing the node loses that rank alone; None if there is none.
    `pods` maps the job's pod names to their nodes."""
    workers = sorted(
        (int(name.rsplit("-", 1)[1]), name)
        for name in pods
        if "-worker-" in name and name.rsplit("-", 1)[1].isdigit()
    )
    for _, name in reversed(workers):
        node = pods[name]
        if node and sum(1 for other in pods.values() if other == node) == 1:
            return name, node
    return None


def pool_nodes_needed(job: str, ranks: int) -> int:
    """Fake Ascend nodes a hardware-fault job needs in its pool (perNode 1: one rank per node): the ranks, and for
    nodeloss one spare for the replacement (it may land neither on the lost node nor beside another rank)."""
    return ranks + 1 if job == "nodeloss" else ranks


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    head = (
        "| job | fault (epoch 2 step) | recovered by | fault -> first resumed step (s) | steps lost | pods recreated "
        "| lost from the periodic ckpt |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        secs = "-" if r["resume_s"] is None else f"{r['resume_s']:.1f}"
        lines.append(
            f"| {r['job']} | {r['fault']} ({r['step']}) | {r['level']} | {secs} | {r['lost']} | {r['recreated']} "
            f"| {r.get('periodic', '-')} |"
        )
    return "\n".join(lines)


def _job(name: str, data: Path, storage: Path, ranks: int = 2, every: int = EVERY) -> dict[str, Any]:
    hyper: dict[str, Any] = {
        "width": 8,
        "layers": [1, 1, 1, 1],
        "image_size": 32,
        "epochs": EPOCHS,
        "steps_per_epoch": STEPS,
        "batch_size": 4,
        "mode": "pynative",
        "save_checkpoint_epochs": 1,
        "save_checkpoint_steps": every,
        "save_checkpoint_seconds": 0,
    }
    spec: dict[str, Any] = {
        "model": "resnet50_bam",
        "device": {"type": "CPU"},
        "replicas": ranks,
        "dataset": {
            "volume": {"hostPath": {"path": str(data), "type": "Directory"}},
            "trainPath": "train",
            "numClasses": 10,
        },
        "hyperparameters": hyper,
        "checkpoint": {"hostPath": str(storage)},
        "runPolicy": {"backoffLimit": 2, "processRestarts": 3},
    }
    if name == "gang":
        hyper["save_checkpoint_steps"] = 0
        spec["runPolicy"]["processRestarts"] = 0
    if name in HARDWARE:
        # Dynamic launch: a rank can be moved alone (a rank-table gang restarts whole: policy.fault_restart).
        # sink_size 1: a step event per step, as on CPU (the automatic Ascend data sink would report once an epoch
        # here, and the fault would land at an epoch's end).
        hyper["sink_size"] = 1
        spec.update(
            image=ASCEND_IMAGE,
            device={"type": "Ascend910", "perNode": 1},
            launch="dynamic",
            podTemplate={"nodeSelector": {POOL_LABEL: name}},
        )
    return {
        "apiVersion": "modelzoo.io/v1alpha1",
        "kind": "ZooTrainingJob",
        "metadata": {"name": name},
        "spec": spec,
    }


def zoo_cluster(*args: str) -> str:
    """The local cluster's CLI (a fault injection) against the cluster the ZOO_CLUSTER_* environment names."""
    proc = subprocess.run(
        [str(REPO / "hack" / "cluster" / "zoo-cluster"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "ZOO_PYTHON": sys.executable},
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"zoo-cluster {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip()


def run(
    kube: Any,
    helpers: ModuleType,
    namespace: str,
    data: Path,
    storage: Path,
    seed: int,
    timeout: float,
    jobs: tuple[str, ...] = JOBS,
    ranks: int = 2,
    keep_logs: Path | None = None,
    every: int = EVERY,
    undo: list[tuple[str, ...]] | None = None,
) -> list[dict[str, Any]]:
    """Apply the jobs, disrupt each at its step, wait for all; one row per job. The zoo-cluster commands that heal
    an injected hardware fault are appended to `undo` as soon as it is injected."""
    undo = [] if undo is None else undo
    # The first three in their order before the hardware rows: a seed still gives them the steps it gave.
    seeded = ("inplace", "podloss", "gang", *HARDWARE)
    at = {job: step for job, step in fault_steps(seed, seeded).items() if job in jobs}

    def k(*args: str, check: bool = True) -> str:
        return str(kube.run("kubectl", "-n", namespace, *args, check=check))

    def uids(job: str) -> dict[str, str]:
        items = json.loads(k("get", "pods", "-l", f"modelzoo.io/job-name={job}", "-o", "json"))["items"]
        return {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in items
            if not p["metadata"].get("deletionTimestamp")
        }

    for job in jobs:
        kube.run(
            "kubectl",
            "-n",
            namespace,
            "apply",
            "-f",
            "-",
            input=json.dumps(_job(job, data, storage, ranks, every)),
        )
    faults: dict[str, float] = {}
    before: dict[str, dict[str, str]] = {}
    seen: dict[str, dict[str, str]] = {job: {} for job in jobs}
    logs: dict[str, list[str]] = {job: [] for job in jobs}
    deadline = time.monotonic() + timeout
    done: set[str] = set()
    while len(done) < len(jobs):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out; faulted {sorted(faults)}, finished {sorted(done)}")
        for job in jobs:
            if job in done:
                continue
            current = uids(job)
            seen[job].update(current)
            if job not in faults:
                events = _events(k("logs", f"{job}-worker-0", "--tail=20", check=False))
                steps = [(e["epoch"], e["step"]) for e in events if e.get("event") == "step"]
                if steps and steps[-1] >= (2, at[job]):
                    before[job] = current
                    for name in current:  # the old pods' logs, before they may go
                        logs[job].append(k("logs", name, "--tail=-1", check=False))
                    if job == "podloss":
                        k("delete", "pod", f"{job}-worker-1", "--wait=false")
                    elif job in HARDWARE:
                        items = json.loads(
                            k("get", "pods", "-l", f"modelzoo.io/job-name={job}", "-o", "json")
                        )["items"]
                        where = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in items}
                        if job == "nodeloss":
                            picked = node_victim(where)
                            if picked is None:
                                raise SystemExit(f"nodeloss: no rank alone on its node: {where}")
                            node = picked[1]
                            undo.append(("node-up", node))
                            zoo_cluster("node-down", node)
                        else:
                            pod = next(p for p in items if p["metadata"]["name"] == f"{job}-worker-1")
                            node = pod["spec"]["nodeName"]
                            config = json.loads(pod["metadata"]["annotations"][DEVICE_ANNOTATION])
                            device = str(config["devices"][0]["device_id"])
                            undo.append(("npu-fault", node, device, "--heal"))
                            zoo_cluster("npu-fault", node, device)
                    elif job == "inplace":
                        helpers.kill_trainer_only(namespace, f"{job}-worker-1")
                    else:
                        helpers.kill_training(namespace, f"{job}-worker-1")
                    faults[job] = time.time()
                continue
            phase = k("get", "ztj", job, "-o", "jsonpath={.status.phase}", check=False)
            if phase in ("Succeeded", "Failed"):
                done.add(job)
        time.sleep(0.5)
    rows = []
    for job in jobs:
        status = json.loads(k("get", "ztj", job, "-o", "json"))["status"]
        if status.get("phase") != "Succeeded":
            raise SystemExit(f"{job} did not succeed: {json.dumps(status)[-2000:]}")
        names = {n for n in seen[job] if "worker-0" in n}
        texts = logs[job] + [k("logs", n, "--tail=-1", check=False) for n in sorted(names)]
        if keep_logs is not None:
            keep_logs.mkdir(parents=True, exist_ok=True)
            for name in sorted(uids(job)):
                (keep_logs / f"{name}.log").write_text(
                    k("logs", name, "--tail=-1", "--timestamps", check=False)
                )
            for i, text in enumerate(logs[job]):
                (keep_logs / f"{job}-before-{i}.log").write_text(text)
        first = first_resumed_step(texts, faults[job])
        resumes = status.get("resumes") or []
        rows.append(
            {
                "job": job,
                "fault": FAULT[job],
                "step": at[job],
                "level": LEVEL[job],
                "resume_s": None if first is None else round(first - faults[job], 1),
                "lost": resumes[-1].get("lostSteps") if resumes else None,
                "recreated": pods_recreated(before[job], uids(job) or seen[job]),
                "periodic": periodic_loss(logs[job], faults[job]),
                "restarts": status.get("restarts", 0),
                "processRestarts": status.get("processRestarts", 0),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run once; print the table (and the rows as JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--data", default="/tmp/zoo-data/digits", help="digits dataset directory")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--ranks", type=int, default=2, help="ranks (workers) per job")
    parser.add_argument(
        "--every", type=int, default=EVERY, help="step-checkpoint interval (inplace, podloss)"
    )
    parser.add_argument("--jobs", default=",".join(JOBS), help=f"which of {','.join(JOBS)} to run")
    parser.add_argument("--logs", help="keep every pod's log of the run in this directory")
    args = parser.parse_args(argv)
    jobs = tuple(j for j in JOBS if j in args.jobs.split(","))
    if not os.environ.get("KUBECONFIG"):
        os.environ.setdefault("ZOO_CLUSTER_NODES", str(NODES_FILE))  # the cluster zoo-cluster up starts
    bench = _load("bench_e2e", REPO / "benchmarks" / "e2e.py")
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    helpers = _load("e2e_helpers", REPO / "tests" / "e2e" / "e2e_helpers.py")
    kube = bench.Kube(bench._kubeconfig())
    data = Path(args.data)
    if not (data / "train").is_dir():
        subprocess.run([str(bench.BIN / "zoo-data"), "digits", "--out", str(data)], check=True)
    tag = secrets.token_hex(3)
    namespace, release = f"recov-{tag}", f"zoo-recov-{tag}"
    storage = Path(f"/tmp/zoo-recovery-{tag}")
    storage.mkdir(parents=True)
    kube.run("kubectl", "create", "namespace", namespace)
    has_crd = kube.run("kubectl", "get", "crd", "zootrainingjobs.modelzoo.io", check=False) != ""
    kube.run(
        "helm", "install", release, str(REPO / "charts" / "zoo-operator"), "-n", namespace,
        "--set", f"fullnameOverride={release}", "--set", f"watchNamespaces={{{namespace}}}",
        "--set", f"health.port={bench._free_port()}", "--set", f"crds.enabled={str(not has_crd).lower()}",
        "--set", f"nodeSelector.kubernetes\\.io/hostname={OPERATOR_NODE}",
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    undo: list[tuple[str, ...]] = []
    try:
        for job in (j for j in jobs if j in HARDWARE):
            got = kube.run("kubectl", "get", "nodes", "-l", f"{POOL_LABEL}={job}", "-o", "name", check=False)
            have, need = len(str(got).split()), pool_nodes_needed(job, args.ranks)
            if have < need:
                raise SystemExit(
                    f"{job}: {need} fake Ascend nodes labelled {POOL_LABEL}={job} needed for --ranks {args.ranks}, "
                    f"the cluster has {have} (start it with ZOO_CLUSTER_NODES={NODES_FILE})"
                )
        kube.run("kubectl", "-n", namespace, "rollout", "status", f"deployment/{release}", "--timeout=180s")
        while kube.run("kubectl", "-n", namespace, "get", "serviceaccount", "default", check=False) == "":
            time.sleep(0.2)
        logs = Path(args.logs) if args.logs else None
        rows = run(
            kube,
            helpers,
            namespace,
            data,
            storage,
            args.seed,
            args.timeout,
            jobs,
            args.ranks,
            logs,
            args.every,
            undo,
        )
    finally:
        for command in undo:
            try:
                zoo_cluster(*command)
            except SystemExit as exc:
                print(exc, file=sys.stderr)
        for job in JOBS:
            kube.run(
                "kubectl", "-n", namespace, "delete", "ztj", job, "--wait=true", "--timeout=120s", check=False
            )
        kube.run("helm", "uninstall", release, "-n", namespace, check=False)
        kube.run("kubectl", "delete", "namespace", namespace, "--wait=false", check=False)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
