"""Status and log aggregation while jobs train: the operator's API requests and CPU per running job (issue 25).

On the local cluster (as benchmarks/scale.py: fake Ascend nodes registered through the API, the operator as a
child process), this benchmark also plays the kubelet of the fake nodes, so the operator meets running ranks:
- the fake nodes' InternalIP is 127.0.0.1 and their kubelet port is a log server of this process (the local
  cluster's own kubelet log endpoint, hack/cluster/zoocluster/logserver.py, with its serving certificate), so
  the operator's log reads go the real way: operator -> apiserver -> "kubelet";
- each fake rank writes the lines the workload writes, with the workload's own code (zoo_workloads.report's
  Reporter: start, a step every --step-seconds, an epoch every --steps-per-epoch steps, eval, done) to its log
  file, every rank, as the workload does; and exits as the workload does: exit code 0 with the termination
  message zoo_workloads.events.success_message gives, phase Succeeded;
- the pod status a kubelet reports (Running, then terminated) is written by this process through the API.
For each scenario (one job of N ranks, and J jobs of 8): the jobs are created and their tables completed (as in
scale.py), the ranks start, then it measures three windows:
  1. training (--train seconds, after a settle of 2 status intervals): the operator's API requests by verb
     (kube.REQUESTS) and its CPU-s (utime + stime), per job;
  2. exit: from the first terminated status until every job says Succeeded, plus 5 s: requests by verb, CPU-s;
  3. idle with the finished jobs kept (--idle seconds): CPU-s and requests.
Prints one markdown table; --json writes the raw rows. Pure helpers are unit-tested
(tests/unit/test_benchmark_aggregation.py).

Usage: `.venv/bin/python benchmarks/aggregation.py [--devices 8,256,4096] [--jobs 100] [--train 60] [--idle 30]
[--json OUT] [--operator-code CHECKOUT]`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "hack" / "cluster")]

import scale  # (benchmarks/scale.py: the fake nodes, the operator child, the table wait)

KUBELET_HOST = "127.0.0.1"  # in the local cluster's kubelet serving certificate (zoocluster/pki.py)
CONTAINER = "worker"  # the operator's container name (zoo_operator.render)


# -- pure helpers (unit-tested) ---------------------------------------------------------------------------------


def rank_lines(rank: int, step: int, steps_per_epoch: int, epochs: int, now: float) -> list[str]:
    """The workload's JSON lines for global step `step` (1-based) of one rank, written by the workload's own
    Reporter: the step, and at an epoch's last step the epoch and its eval (no timing fields: a fake has none)."""
    from zoo_workloads.report import Reporter

    out = io.StringIO()
    rep = Reporter(rank=rank, stream=out)
    rep.epochs = epochs
    epoch, within = divmod(step - 1, steps_per_epoch)
    loss = round(2.3 / (1 + 0.05 * step), 6)
    rep.step(epoch=epoch + 1, step=within + 1, loss=loss, steps_per_epoch=steps_per_epoch)
    if within + 1 == steps_per_epoch:
        rep.epoch(epoch=epoch + 1, loss=loss, epochs=epochs)
        rep.eval(epoch=epoch + 1, top1=min(0.1 * (epoch + 1), 0.99))
    return out.getvalue().splitlines()


def start_lines(rank: int, ranks: int, steps_per_epoch: int, epochs: int) -> list[str]:
    """The workload's first JSON line (start)."""
    from zoo_workloads.report import Reporter

    out = io.StringIO()
    Reporter(rank=rank, stream=out).start(
        epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=4, rank_size=ranks
    )
    return out.getvalue().splitlines()


def done_line(rank: int, epochs: int, top1: float) -> str:
    """The workload's last JSON line (done)."""
    from zoo_workloads.report import Reporter

    out = io.StringIO()
    Reporter(rank=rank, stream=out).done(top1=top1, epochs=epochs, termination=False)
    return out.getvalue().rstrip("\n")


def termination_message(epochs: int, top1: float) -> str:
    """What a rank that succeeded leaves in its termination message file (the workload's own encoding)."""
    from zoo_workloads.events import encode_termination, success_message

    return encode_termination(success_message({"top_1_accuracy": top1}, None, epochs))


def stored_line(text: str, now: float) -> bytes:
    """A log line as the local cluster's kubelet stores it: `<RFC 3339 time> stdout <text>`."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
    return f"{stamp} stdout {text}\n".encode()


def running_status(node_index: int, pod_index: int, now: float) -> dict[str, Any]:
    """The status a kubelet reports for a started pod (its one container running)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return {
        "status": {
            "phase": "Running",
            "hostIP": KUBELET_HOST,
            "podIP": f"10.201.{pod_index // 250}.{pod_index % 250 + 1}",
            "startTime": stamp,
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": stamp}
                for t in ("Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {
                    "name": CONTAINER,
                    "ready": True,
                    "restartCount": 0,
                    "image": "zoo-operator/workload-ascend:bench",
                    "imageID": "",
                    "state": {"running": {"startedAt": stamp}},
                }
            ],
        }
    }


def exited_status(exit_code: int, message: str, now: float) -> dict[str, Any]:
    """The status a kubelet reports once the container exited (phase from the exit code, restartPolicy Never)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return {
        "status": {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "conditions": [
                {"type": t, "status": "False", "lastTransitionTime": stamp}
                for t in ("ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {
                    "name": CONTAINER,
                    "ready": False,
                    "restartCount": 0,
                    "image": "zoo-operator/workload-ascend:bench",
                    "imageID": "",
                    "state": {
                        "terminated": {
                            "exitCode": exit_code,
                            "reason": "Completed" if exit_code == 0 else "Error",
                            "message": message,
                            "startedAt": stamp,
                            "finishedAt": stamp,
                        }
                    },
                }
            ],
        }
    }


def per_job(counts: Mapping[str, int], jobs: int, seconds: float | None = None) -> dict[str, float]:
    """Requests by verb per job (and per second when `seconds` is given), zero verbs left out."""
    scale_by = jobs * (seconds if seconds else 1.0)
    return {k: round(v / scale_by, 3) for k, v in sorted(counts.items()) if v}


def diff(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Counter difference (requests made between two dumps)."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def verbs(counts: Mapping[str, float]) -> str:
    """`verb n, ...` for a table cell."""
    return ", ".join(f"{k} {v:g}" for k, v in counts.items()) or "0"


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The markdown table of the results."""
    head = (
        "| scenario | pods | training: requests per job per s (by verb) | training: operator CPU-s per job per "
        "min | exit: requests per job (by verb) | exit: CPU-s per job | first exit -> all Succeeded | "
        "idle, finished jobs kept: CPU-s / requests | peak RSS |"
    )
    out = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['scenario']} | {r['pods']} | {sum(r['train_rps'].values()):.3f} ({verbs(r['train_rps'])}) | "
            f"{r['train_cpu_per_job_min']:.3f} | {sum(r['exit_requests'].values()):.1f} "
            f"({verbs(r['exit_requests'])}) | {r['exit_cpu_per_job']:.3f} | {r['exit_s']:.1f} s | "
            f"{r['idle_cpu_s']:.2f} in {r['idle_s']:.0f} s / {r['idle_requests']} | {r['peak_rss_mib']:.0f} MiB |"
        )
    return "\n".join(out)


# -- the fake kubelet -------------------------------------------------------------------------------------------


class Container:
    """One fake rank's container: its log file and whether it has ended (the log server's ContainerProcess)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ended = False

    def logs_closed(self) -> bool:
        return self.ended


class FakeKubelet:
    """The log endpoint of the fake nodes and the ranks' log files (written from this process)."""

    def __init__(self, workdir: Path, pki: Path) -> None:
        from zoocluster import logserver

        self.dir = workdir / "logs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.containers: dict[tuple[str, str], Container] = {}
        self.lock = threading.Lock()
        self.server = logserver.serve(
            0, str(pki / "kubelet.crt"), str(pki / "kubelet.key"), str(pki / "ca.crt"), self.find
        )
        self.port = int(self.server.server_address[1])

    def find(self, ns: str, pod: str, container: str, previous: bool) -> tuple[Path, Container] | str:
        with self.lock:
            found = self.containers.get((ns, pod))
        if container != CONTAINER or found is None:
            return f'container "{container}" in pod "{pod}" is waiting to start'
        return found.path, found

    def start(self, ns: str, pod: str, lines: Sequence[str]) -> None:
        path = self.dir / f"{ns}_{pod}.log"
        now = time.time()
        path.write_bytes(b"".join(stored_line(t, now) for t in lines))
        with self.lock:
            self.containers[(ns, pod)] = Container(path)

    def write(self, ns: str, pod: str, lines: Sequence[str]) -> None:
        now = time.time()
        with self.containers[(ns, pod)].path.open("ab") as fh:
            fh.write(b"".join(stored_line(t, now) for t in lines))

    def end(self, ns: str, pod: str) -> None:
        self.containers[(ns, pod)].ended = True

    def forget(self) -> None:
        with self.lock:
            for c in self.containers.values():
                c.ended = True
                c.path.unlink(missing_ok=True)
            self.containers.clear()

    def stop(self) -> None:
        self.server.shutdown()


# -- the run ----------------------------------------------------------------------------------------------------


def agg_job(name: str, replicas: int) -> dict[str, Any]:
    """scale.bench_job, with a scheduling timeout longer than a loaded machine takes to create and bind 4096
    pods before this benchmark starts them (the default 600 s failed a 4096-rank job at load 20)."""
    body = scale.bench_job(name, replicas)
    body["spec"]["runPolicy"] = {"schedulingTimeoutSeconds": 7200}
    return body


async def point_nodes(bench: scale.Bench, nodes: int, port: int) -> None:
    """Make the fake nodes' kubelet this process's log server (InternalIP 127.0.0.1, its port)."""
    patch = {
        "status": {
            "addresses": [{"type": "InternalIP", "address": KUBELET_HOST}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        }
    }
    await scale.bounded(
        lambda i=i: bench.core.patch_node_status(f"bench-node-{i}", patch, _content_type=scale.MERGE)
        for i in range(nodes)
    )


async def phases(bench: scale.Bench) -> list[str]:
    """The phase of every job in the operator's namespace."""
    jobs = await bench.custom.list_namespaced_custom_object(
        "modelzoo.io", "v1alpha1", bench.op_ns, "zootrainingjobs"
    )
    return [str((j.get("status") or {}).get("phase")) for j in jobs["items"]]


async def scenario(
    bench: scale.Bench,
    op: scale.OperatorProcess,
    kubelet: FakeKubelet,
    name: str,
    bodies: list[dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Create the jobs, start their ranks, measure training, exit and idle (see the module doc)."""
    scale.note(f"scenario {name}")
    jobs = len(bodies)
    ns = bench.op_ns
    await bench.operator_run(bodies)
    pods = sorted(await bench.pod_names(ns), key=lambda p: p.metadata.name)
    ranks_of = {b["metadata"]["name"]: int(b["spec"]["replicas"]) for b in bodies}
    spe, epochs = args.steps_per_epoch, args.epochs
    rank = {p.metadata.name: int(p.metadata.labels.get("modelzoo.io/rank", 0) or 0) for p in pods}
    for p in pods:
        size = ranks_of[p.metadata.labels[scale.JOB_LABEL]]
        kubelet.start(ns, p.metadata.name, start_lines(rank[p.metadata.name], size, spe, epochs))
    now = time.time()
    await scale.bounded(
        lambda i=i, p=p: bench.core.patch_namespaced_pod_status(
            p.metadata.name,
            ns,
            running_status(int(p.spec.node_name.rsplit("-", 1)[1]), i, now),
            _content_type=scale.MERGE,
        )
        for i, p in enumerate(pods)
    )
    scale.note(f"{len(pods)} ranks running")

    step = 0
    stop = asyncio.Event()

    async def train() -> None:
        """Every rank writes its step lines every --step-seconds (as the workload does), until stopped."""
        nonlocal step
        while not stop.is_set():
            step += 1
            t = time.time()
            for p in pods:
                kubelet.write(ns, p.metadata.name, rank_lines(rank[p.metadata.name], step, spe, epochs, t))
            await asyncio.sleep(max(args.step_seconds - (time.time() - t), 0.05))

    trainer = asyncio.get_running_loop().create_task(train())
    await asyncio.sleep(2 * args.status_interval)  # the start's passes settle
    req0, cpu0, t0 = await op.requests_by(), op.cpu(), time.monotonic()
    await asyncio.sleep(args.train)
    req1, cpu1, t1 = await op.requests_by(), op.cpu(), time.monotonic()
    stop.set()
    await trainer
    scale.note(f"trained {step} steps; ranks exit")

    top1 = 0.9
    message = termination_message(epochs, top1)
    for p in pods:
        kubelet.write(ns, p.metadata.name, [done_line(rank[p.metadata.name], epochs, top1)])
        kubelet.end(ns, p.metadata.name)
    first = time.monotonic()
    now = time.time()
    await scale.bounded(
        lambda p=p: bench.core.patch_namespaced_pod_status(
            p.metadata.name, ns, exited_status(0, message, now), _content_type=scale.MERGE
        )
        for p in pods
    )

    async def all_succeeded() -> bool:
        return (await phases(bench)).count("Succeeded") >= jobs

    await bench.wait("every job Succeeded", all_succeeded, 600, every=0.2)
    exit_s = time.monotonic() - first
    await asyncio.sleep(5)  # the last status writes land
    req2, cpu2 = await op.requests_by(), op.cpu()
    scale.note(f"all {jobs} jobs Succeeded {exit_s:.1f} s after the first exit")

    await asyncio.sleep(5)
    req3, cpu3 = await op.requests(), op.cpu()
    await asyncio.sleep(args.idle)
    req4, cpu4 = await op.requests(), op.cpu()
    seconds = t1 - t0
    row = {
        "scenario": name,
        "pods": len(pods),
        "ranks": sum(ranks_of.values()),
        "jobs": jobs,
        "train_s": seconds,
        "steps": step,
        "train_requests": diff(req1, req0),
        "train_rps": per_job(diff(req1, req0), jobs, seconds),
        "train_cpu_s": cpu1 - cpu0,
        "train_cpu_per_job_min": (cpu1 - cpu0) / jobs * 60 / seconds,
        "exit_requests": per_job(diff(req2, req1), jobs),
        "exit_cpu_per_job": (cpu2 - cpu1) / jobs,
        "exit_s": exit_s,
        "idle_s": args.idle,
        "idle_cpu_s": cpu4 - cpu3,
        "idle_requests": req4 - req3,
        "peak_rss_mib": op.rss(),
        "load": os.getloadavg()[0],
    }
    print(json.dumps(row), flush=True)
    await bench.remove_jobs()
    kubelet.forget()
    return row


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    from kubernetes_asyncio import client, config

    kubeconfig = os.environ.get("KUBECONFIG") or str(scale.REPO / ".cache" / "test-cluster" / "kubeconfig")
    pki = Path(args.pki or Path(kubeconfig).parent / "pki")
    await asyncio.to_thread(scale.install_crd, kubeconfig)
    await config.load_kube_config(config_file=kubeconfig)
    api = client.ApiClient()
    suffix = secrets.token_hex(3)
    bench = scale.Bench(api, f"agg-op-{suffix}", f"agg-floor-{suffix}")
    devices = [int(d) for d in args.devices.split(",") if d]
    nodes = scale.nodes_needed(max(devices + [args.jobs * 8]))
    workdir = Path(args.workdir or f"/tmp/zoo-aggregation-{suffix}")
    workdir.mkdir(parents=True, exist_ok=True)
    kubelet = FakeKubelet(workdir, pki)
    await bench.setup(nodes)
    await point_nodes(bench, nodes, kubelet.port)
    env = {"ZOO_STATUS_INTERVAL_SECONDS": str(args.status_interval)}
    os.environ.update(env)  # the operator child inherits it
    op = scale.OperatorProcess(bench.op_ns, kubeconfig, workdir, args.operator_code)
    rows = []
    try:
        await asyncio.to_thread(op.wait_ready)
        for n in devices:
            rows.append(await scenario(bench, op, kubelet, f"1 job of {n}", [agg_job(f"a{n}", n)], args))
        if args.jobs:
            bodies = [agg_job(f"b{i}", 8) for i in range(args.jobs)]
            rows.append(await scenario(bench, op, kubelet, f"{args.jobs} jobs of 8", bodies, args))
    finally:
        op.stop()
        await bench.teardown(nodes)
        await api.close()
        kubelet.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devices", default="8,256,4096", help="comma-separated N (ranks of one job)")
    parser.add_argument("--jobs", type=int, default=100, help="jobs of 8 in the many-jobs scenario (0: skip)")
    parser.add_argument("--train", type=float, default=60.0, help="seconds of the training window")
    parser.add_argument(
        "--idle", type=float, default=30.0, help="seconds of idle with the finished jobs kept"
    )
    parser.add_argument("--step-seconds", type=float, default=1.0, help="seconds between a rank's steps")
    parser.add_argument("--steps-per-epoch", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1000, help="epochs the ranks announce (never reached)")
    parser.add_argument(
        "--status-interval", type=float, default=5.0, help="the operator's ZOO_STATUS_INTERVAL_SECONDS"
    )
    parser.add_argument("--pki", help="the cluster's pki directory (default: next to the kubeconfig)")
    parser.add_argument("--json", help="write the raw rows here")
    parser.add_argument(
        "--operator-code", help="run another checkout's operator (before/after runs), as scale.py does"
    )
    parser.add_argument(
        "--workdir", help="operator log, stats and rank logs (default /tmp/zoo-aggregation-<id>)"
    )
    args = parser.parse_args(argv)
    rows = asyncio.run(main_async(args))
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
