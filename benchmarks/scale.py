"""The control loop at cluster scale: the operator against a bare client doing the same API work, side by side.

On the local cluster (KUBECONFIG; default: the test cluster's .cache/test-cluster kubeconfig), this
- registers fake Ascend nodes through the API (8 x huawei.com/Ascend910 each, label and taint `zoo-bench`; no
  kubelet: the scheduler still binds pods to them, nothing runs),
- starts the operator as a child process (this file with --operator-child: `zoo-operator run` plus a SIGUSR1
  handler that dumps its API request counter), watching one fresh namespace,
- for each N (devices of one job) and for 100 jobs of 8:
  1. floors, by a bare kubernetes_asyncio client, 64 requests in flight, seconds until the last pod create
     returned: the pods-only floor creates the same pod objects (render.pods of the same job, owner references
     dropped) and nothing else; the fair floor (issue 25) writes what the operator's first pass writes (planner.plan
     on the job with no pods): the job itself (the user's create), then the objects the pods must wait for
     (NetworkPolicy, PodGroup), then the Service, the ConfigMap holding the table, the pods and the status patch
     together; then the completed table (untimed). Its API requests per job are those writes;
  2. operator: the job is created; seconds until the benchmark's pod watch has seen every pod; the operator's
     API requests from the job's create until 5 s after its table completed;
  3. once every pod is bound, the benchmark writes each pod's device annotation (as the device plugin would,
     64 in flight); seconds from the last annotation write to the rank table ConfigMap saying "completed";
  4. the operator's CPU-s (utime + stime of its process) and API requests while idle for --idle seconds;
  5. the operator's peak RSS (VmHWM);
  then it force-deletes the pods (no kubelet would ever confirm a graceful deletion) and the jobs.
Prints one table (markdown) and, with --json, writes the raw numbers. Pure helpers are unit-tested
(tests/unit/test_benchmark_scale.py).

With `--at-once N` (issue 24), N jobs of 8 are created all at once (every create in flight together) and the
run reports seconds until every job is planned (has a status.phase) and every pod exists, the operator's failed
API tries by status (429 throttling, 409, 5xx, timeouts; kube.FAILURES), its peak RSS, and a census: no job
lost, none unplanned, each with exactly its pods, no rank twice, no pod without its job as controller owner.

Usage: `.venv/bin/python benchmarks/scale.py [--devices 8,64,256,1024] [--jobs 100] [--at-once 300] [--idle 60]
[--json OUT] [--operator-code CHECKOUT]` (another checkout's operator against this one's floor: a before/after comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TABLE_TIMEOUT = 300.0  # seconds from the last annotation to the completed tables before the row says "never"
NPUS_PER_NODE = 8
IN_FLIGHT = 64
BENCH_LABEL = "zoo-bench"
READY_LINE = "Activity 'start' succeeded"
ASCEND_RESOURCE = "huawei.com/Ascend910"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JOB_LABEL = "modelzoo.io/job-name"  # zoo_operator.conditions.LABEL_JOB
ROLE_LABEL, RANK_LABEL = "modelzoo.io/role", "modelzoo.io/rank"  # conditions.LABEL_ROLE, LABEL_RANK
ANNOTATION = "ascend.kubectl.kubernetes.io/ascend-910-configuration"


# -- pure helpers (unit-tested) ---------------------------------------------------------------------------------


def nodes_needed(devices: int, per_node: int = NPUS_PER_NODE) -> int:
    """Fake nodes that hold `devices` one-device pods."""
    return -(-devices // per_node)


def node_ip(index: int) -> str:
    """A distinct fake InternalIP per node (10.200.x.y)."""
    return f"10.200.{index // 250}.{index % 250 + 1}"


def node_labels() -> dict[str, str]:
    """The benchmark label plus the Ascend labels MindCluster puts on nodes of the operator's default chip
    (the operator selects nodes by them: zoo_operator.ascend)."""
    from zoo_operator import ascend, settings

    defaults = settings.Settings()
    return {
        BENCH_LABEL: "true",
        ascend.ACCELERATOR_TYPE_LABEL: ascend.CHIPS[defaults.ascend_chip].accelerator_type,
        ascend.HOST_ARCH_LABEL: defaults.ascend_host_arch,
    }


def fake_node(index: int) -> dict[str, Any]:
    """A Node object with 8 Ascend devices, labelled and tainted so only benchmark pods land there."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        # the hostname label a kubelet sets: server pods' (anti-)affinity has it as topologyKey
        "metadata": {
            "name": f"bench-node-{index}",
            "labels": {**node_labels(), "kubernetes.io/hostname": f"bench-node-{index}"},
        },
        "spec": {"taints": [{"key": BENCH_LABEL, "value": "true", "effect": "NoSchedule"}]},
    }


def fake_node_status(index: int) -> dict[str, Any]:
    """The status a kubelet would report: Ready, capacity = allocatable, one InternalIP."""
    capacity = {"cpu": "192", "memory": "1536Gi", "pods": "110", ASCEND_RESOURCE: str(NPUS_PER_NODE)}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "benchmark node",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "addresses": [{"type": "InternalIP", "address": node_ip(index)}],
        }
    }


def bench_job(name: str, replicas: int, server: bool = False) -> dict[str, Any]:
    """A rank-table Ascend job of `replicas` ranks whose pods go only to the fake nodes; with `server`, one pod
    per node holding its 8 NPUs (spec.device.podsPer server, perNode 8)."""
    device: dict[str, Any] = {"type": "Ascend910"}
    if server:
        device.update(podsPer="server", perNode=NPUS_PER_NODE)
    return {
        "apiVersion": "modelzoo.io/v1alpha1",
        "kind": "ZooTrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "resnet50_bam",
            "image": "zoo-operator/workload-ascend:bench",
            "device": device,
            "replicas": replicas,
            "dataset": {"volume": {"emptyDir": {}}, "trainPath": "train", "numClasses": 10},
            "hyperparameters": {"epochs": 1, "batch_size": 4},
            "podTemplate": {
                "nodeSelector": {BENCH_LABEL: "true"},
                "tolerations": [{"key": BENCH_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
            },
        },
    }


def pods_of(body: Mapping[str, Any]) -> int:
    """The pods of a bench job: one per rank, or one per perNode ranks with podsPer server."""
    dev, replicas = body["spec"]["device"], int(body["spec"]["replicas"])
    return replicas // int(dev["perNode"]) if dev.get("podsPer") == "server" else replicas


def device_annotation(pod: str, node_index: int, device: int, count: int = 1) -> str:
    """The device plugin's annotation for one pod holding devices `device`.. (`count` of them) on fake node
    `node_index`."""
    return json.dumps(
        {
            "pod_name": pod,
            "server_id": node_ip(node_index),
            "devices": [
                {"device_id": str(d), "device_ip": f"192.168.{node_index % 250}.{d}"}
                for d in range(device, device + count)
            ],
        }
    )


def floor_pods(body: Mapping[str, Any], namespace: str) -> list[dict[str, Any]]:
    """The pod objects the operator would create for `body`, for the bare client (no owner to point at)."""
    from zoo_operator import render, settings, spec

    job = spec.parse(
        {**body, "metadata": {**body["metadata"], "namespace": namespace, "uid": "floor"}},
        settings.Settings(),
    )
    pods = render.pods(job, 0)
    for pod in pods:
        pod["metadata"].pop("ownerReferences", None)
    return pods


def floor_work(body: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """What the operator's first pass writes for `body`, for the fair floor: planner.plan on the job with no pods
    (as `zoo-operator render` does), owner references dropped. `before`: the objects correctness needs before
    the pods (planner.BEFORE_PODS); `along`: the Service and launch ConfigMap (holding the initializing table),
    then the pods; `status`: the first status patch; `table`: the ConfigMap patch that completes the table
    (devices as the benchmark's annotations give them)."""
    from zoo_operator import memory, planner, ranktable, settings

    meta = {**body["metadata"], "namespace": namespace, "uid": "floor"}
    seen = memory.Observation(
        body={**body, "metadata": meta}, pods=(), now=time.time(), pod_group_served=True
    )
    first = planner.plan(seen, memory.JobMemory(uid="floor"), settings.Settings())
    ensure = planner.with_table(first.ensure, first.config_map)
    for obj in [*ensure, *first.create]:
        obj["metadata"].pop("ownerReferences", None)
    before, along = planner.ensure_waves(ensure)
    assert first.job is not None
    job = first.job
    devices = [
        ranktable.Device(f"w{i}", node_ip(i // NPUS_PER_NODE), str(i % NPUS_PER_NODE), f"192.168.0.{i % 250}")
        for i in range(job.replicas)
    ]
    data = ranktable.config_map_data(devices, job.replicas, job.rank_table_version, 0)
    return {
        "before": before,
        "along": along + first.create,
        "status": first.status_patch,
        "table": (render_name(job), {"data": data}) if job.launch == "ranktable" else None,
    }


def render_name(job: Any) -> str:
    """The rank-table ConfigMap's name."""
    from zoo_operator import render

    return render.ranktable_config_map_name(job)


def floor_requests(work: Sequence[Mapping[str, Any]]) -> int:
    """API requests the fair floor makes: every object once, the first status patch, the completed table."""
    return sum(
        len(w["before"]) + len(w["along"]) + (w["status"] is not None) + (w["table"] is not None)
        for w in work
    )


def objects_of(work: Sequence[Mapping[str, Any]]) -> int:
    """Objects created for the jobs (the fixed objects and the pods)."""
    return sum(len(w["before"]) + len(w["along"]) for w in work)


def table_status(hccl_json: str | None) -> str | None:
    """The `status` of a rank table (hccl.json text), or None."""
    try:
        return json.loads(hccl_json or "").get("status")
    except (ValueError, AttributeError):
        return None


def cpu_seconds(stat: str) -> float:
    """utime + stime of a process from /proc/<pid>/stat, in seconds."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(status: str) -> float:
    """VmHWM from /proc/<pid>/status, in MiB."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def census(
    jobs: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]], expected: Mapping[str, int]
) -> dict[str, Any]:
    """What became of jobs submitted at once (raw JSON items of the job and pod lists; `expected`: each job's
    name and its pod count): lost (not listed), unplanned (no status.phase yet), the jobs whose pods are fewer or
    more than expected, duplicate ranks (two pods of one job, role and rank), and pods whose controller owner is
    not their job (by UID) or no job of the run. Everything but `phases` is 0 when nothing was lost or doubled."""
    by_name = {j["metadata"]["name"]: j for j in jobs}
    uid_of = {name: j["metadata"]["uid"] for name, j in by_name.items()}
    count: dict[str, int] = dict.fromkeys(expected, 0)
    seen: set[tuple[str, str, str]] = set()
    duplicates = foreign = 0
    for pod in pods:
        meta = pod["metadata"]
        job = (meta.get("labels") or {}).get(JOB_LABEL, "")
        owner = [r["uid"] for r in meta.get("ownerReferences") or [] if r.get("controller")]
        if job not in expected or owner != [uid_of.get(job)]:
            foreign += 1
            continue
        count[job] += 1
        key = (job, meta["labels"].get(ROLE_LABEL, ""), meta["labels"].get(RANK_LABEL, ""))
        duplicates += key in seen
        seen.add(key)
    phases: dict[str, int] = {}
    for j in by_name.values():
        phase = (j.get("status") or {}).get("phase") or "-"
        phases[phase] = phases.get(phase, 0) + 1
    return {
        "lost": sum(name not in by_name for name in expected),
        "unplanned": sum(not (by_name[n].get("status") or {}).get("phase") for n in expected if n in by_name),
        "wrong_pod_count": sum(count[n] != want for n, want in expected.items()),
        "duplicate_ranks": duplicates,
        "foreign_pods": foreign,
        "phases": phases,
    }


def ratio(op: float, floor: float) -> str:
    """op/floor as 'x.xx' (or '-' without a floor)."""
    return f"{op / floor:.2f}" if floor > 0 else "-"


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The markdown table of the results."""
    head = (
        "| scenario | pods | pods created: operator / fair floor (ratio) | pods-only floor (ratio) | "
        "API requests per job: operator / fair floor / objects | last annotation -> table completed (its size) | "
        "operator CPU-s idle | API requests per idle minute | peak RSS |"
    )
    out = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        jobs = r.get("jobs", 1)
        out.append(
            f"| {r['scenario']} | {r['pods']} | {r['op_created_s']:.2f} s / {r['fair_floor_s']:.2f} s "
            f"({ratio(r['op_created_s'], r['fair_floor_s'])}x) | {r['floor_created_s']:.2f} s "
            f"({ratio(r['op_created_s'], r['floor_created_s'])}x) | "
            f"{r['op_requests'] / jobs:.1f} / {r['floor_requests'] / jobs:.1f} / {r['objects'] / jobs:.1f} | "
            f"{r['table_s']:.2f} s ({r.get('table_kib', 0):.0f} KiB) | "
            f"{r['idle_cpu_s']:.2f} in {r['idle_s']:.0f} s | {r['idle_requests_per_min']:.1f} | "
            f"{r['peak_rss_mib']:.0f} MiB |"
        )
    return "\n".join(out)


# -- the operator child -----------------------------------------------------------------------------------------


def operator_child(stats_path: str) -> int:
    """Run the operator in this process; SIGUSR1 writes its request counter to `stats_path` (with
    ZOO_BENCH_TRACEMALLOC=1 also the biggest holders of Python memory, by file and by line)."""
    import tracemalloc

    traced = os.environ.get("ZOO_BENCH_TRACEMALLOC") == "1"
    if traced:
        tracemalloc.start()  # before the imports: module code and data count too
    from zoo_operator import cli, kube

    def dump(*_: Any) -> None:
        out: dict[str, Any] = {
            "requests": dict(kube.REQUESTS),
            "failures": dict(getattr(kube, "FAILURES", {})),  # an --operator-code checkout may not count them
            "t": time.time(),
        }
        if traced:
            snap = tracemalloc.take_snapshot()
            out["traced_mib"] = tracemalloc.get_traced_memory()[0] / 2**20
            for key in ("filename", "lineno"):
                out[f"top_by_{key}"] = [
                    [str(st.traceback), round(st.size / 2**20, 2), st.count]
                    for st in snap.statistics(key)[:15]
                ]
        Path(stats_path).write_text(json.dumps(out))
        # Where each asyncio task waits (a pass that never ends shows here): the signal handler runs on the loop.
        with Path(stats_path).with_suffix(".tasks.txt").open("w") as tasks:
            for task in asyncio.all_tasks():
                frames = [f"{f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}" for f in task.get_stack()]
                tasks.write(f"{task.get_name()} {task.get_coro()!r}\n  " + "\n  ".join(frames) + "\n")

    signal.signal(signal.SIGUSR1, dump)
    return cli.main(["run"])


# -- the run ----------------------------------------------------------------------------------------------------


CALL_TIMEOUT = 60.0
"""Seconds one request of the benchmark's client may take before it is tried again: on a loaded machine the
apiserver sometimes never answers one (seen at 1024 pods), and one lost answer must not hang the run."""


async def bounded(calls: Iterable[Callable[[], Awaitable[Any]]], limit: int = IN_FLIGHT) -> None:
    """Run the calls, `limit` at a time, each tried up to 3 times when it takes over CALL_TIMEOUT."""
    gate = asyncio.Semaphore(limit)

    async def one(make: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            for attempt in range(3):
                try:
                    await asyncio.wait_for(make(), CALL_TIMEOUT)
                    return
                except TimeoutError:
                    note(f"a request took over {CALL_TIMEOUT:.0f} s (try {attempt + 1} of 3)")
            raise TimeoutError(f"a request took over {CALL_TIMEOUT:.0f} s three times")

    await asyncio.gather(*(one(m) for m in calls))


def note(text: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Bench:
    """The cluster side of the benchmark (kubernetes_asyncio, no operator code on the API path)."""

    def __init__(self, api: Any, op_ns: str, floor_ns: str) -> None:
        from kubernetes_asyncio import client

        self.client = client
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.op_ns, self.floor_ns = op_ns, floor_ns
        self.table_bytes = 0
        self._beating: threading.Thread | None = None
        self._stop_beats = threading.Event()

    async def setup(self, nodes: int) -> None:
        for ns in (self.op_ns, self.floor_ns):
            await self.core.create_namespace({"metadata": {"name": ns}})
        existing = {n.metadata.name for n in (await self.core.list_node(label_selector=BENCH_LABEL)).items}

        async def node(i: int) -> None:
            if f"bench-node-{i}" not in existing:
                await self.core.create_node(fake_node(i))
            await self.core.patch_node_status(f"bench-node-{i}", fake_node_status(i))

        await bounded(lambda i=i: node(i) for i in range(nodes))
        await self.beat(nodes)
        # On a thread with its own loop and client: on the benchmark's loop, behind hundreds of status writes
        # in flight, beats came late enough (over 40 s at load 40) for the nodes to be marked Unknown.
        self._stop_beats = threading.Event()
        self._beating = threading.Thread(target=self._beat_thread, args=(nodes,), daemon=True)
        self._beating.start()

    async def beat(self, nodes: int, core: Any = None) -> None:
        """Renew every fake node's Lease in kube-node-lease (created on the first beat), as a kubelet does."""
        core = core or self.core
        leases = self.client.CoordinationV1Api(core.api_client)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())

        async def one(i: int) -> None:
            name = f"bench-node-{i}"
            spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": stamp}
            try:
                await leases.patch_namespaced_lease(
                    name, "kube-node-lease", {"spec": spec}, _content_type=MERGE
                )
            except self.client.ApiException as err:
                if err.status != 404:
                    raise
                body = {"metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": spec}
                await leases.create_namespaced_lease("kube-node-lease", body)

        await bounded(lambda i=i: one(i) for i in range(nodes))
        # A node the node-lifecycle controller marked Unknown anyway (its grace ran out before the first beat on
        # a loaded machine) stays so until "its kubelet" posts Ready again, as a kubelet does on its next sync.
        ready = fake_node_status(0)["status"]["conditions"]
        lost = [
            n.metadata.name
            for n in (await core.list_node(label_selector=BENCH_LABEL)).items
            if not any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        ]
        await bounded(
            lambda n=n: core.patch_node_status(n, {"status": {"conditions": ready}}, _content_type=STRATEGIC)
            for n in lost
        )

    def _beat_thread(self, nodes: int) -> None:
        """A Lease renewal of every fake node every 5 s (the kubelet renews every 10 s; twice as often leaves a
        loaded machine room): since issue 23 the local cluster runs the node-lifecycle controller, which marks a
        node Unknown after its grace period without one, and the operator then restarts every job on it."""
        import aiohttp

        async def forever() -> None:
            api = self.client.ApiClient()
            core = self.client.CoreV1Api(api)
            try:
                while not self._stop_beats.is_set():
                    await asyncio.sleep(5)
                    try:
                        await self.beat(nodes, core)
                    except (self.client.ApiException, aiohttp.ClientError, OSError, TimeoutError) as err:
                        note(f"heartbeat: {err}")  # a loaded apiserver: the next beat tries again
            finally:
                await api.close()

        asyncio.run(forever())

    async def pod_names(self, ns: str) -> list[Any]:
        return (await self.core.list_namespaced_pod(ns)).items

    async def wait(
        self, what: str, check: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.1
    ) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout} s")
            await asyncio.sleep(every)

    async def floor(self, bodies: Sequence[Mapping[str, Any]]) -> float:
        """The pods-only floor: the job's pods and nothing else, 64 in flight."""
        pods = [p for b in bodies for p in floor_pods(b, self.floor_ns)]
        start = time.monotonic()
        await bounded(lambda p=p: self.core.create_namespaced_pod(self.floor_ns, p) for p in pods)
        took = time.monotonic() - start
        note(f"floor: {len(pods)} pods created in {took:.2f} s")
        await self.clear(self.floor_ns)
        return took

    async def create_object(self, obj: Mapping[str, Any]) -> None:
        """One create of a kind the operator creates (Pod, Service, ConfigMap, NetworkPolicy, PodGroup)."""
        ns, kind = obj["metadata"]["namespace"], obj["kind"]
        if kind == "NetworkPolicy":
            await self.client.NetworkingV1Api(self.core.api_client).create_namespaced_network_policy(ns, obj)
        elif kind == "PodGroup":
            group, version = obj["apiVersion"].split("/")
            await self.custom.create_namespaced_custom_object(group, version, ns, "podgroups", obj)
        else:
            make = {"Pod": "pod", "Service": "service", "ConfigMap": "config_map"}[kind]
            await getattr(self.core, f"create_namespaced_{make}")(ns, obj)

    async def fair_floor(self, bodies: Sequence[Mapping[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
        """The fair floor: what the operator's first pass writes for each job, by a bare client, from the job's
        create on (the user's request, as in the operator's timing): the objects the pods wait for first, then
        the Service, the ConfigMap holding the table, the pods and the status patch together, 64 in flight;
        seconds until the last pod create returned. The completed-table patches follow, untimed (the
        operator's table time is measured from the last annotation instead)."""
        work = [floor_work(b, self.floor_ns) for b in bodies]
        start = time.monotonic()

        async def one_job(body: Mapping[str, Any], w: Mapping[str, Any], gate: asyncio.Semaphore) -> None:
            async def gated(make: Callable[[], Awaitable[Any]]) -> None:
                async with gate:
                    await asyncio.wait_for(make(), CALL_TIMEOUT)

            await gated(
                lambda: self.custom.create_namespaced_custom_object(
                    "modelzoo.io", "v1alpha1", self.floor_ns, "zootrainingjobs", dict(body)
                )
            )
            await asyncio.gather(*(gated(lambda o=o: self.create_object(o)) for o in w["before"]))
            calls = [lambda o=o: self.create_object(o) for o in w["along"]]
            if w["status"] is not None:
                name = body["metadata"]["name"]
                calls.append(
                    lambda: self.custom.patch_namespaced_custom_object_status(
                        "modelzoo.io",
                        "v1alpha1",
                        self.floor_ns,
                        "zootrainingjobs",
                        name,
                        w["status"],
                        _content_type=MERGE,
                    )
                )
            await asyncio.gather(*(gated(c) for c in calls))

        gate = asyncio.Semaphore(IN_FLIGHT)
        await asyncio.gather(*(one_job(b, w, gate) for b, w in zip(bodies, work, strict=True)))
        took = time.monotonic() - start
        await bounded(
            lambda t=w["table"]: self.core.patch_namespaced_config_map(
                t[0], self.floor_ns, t[1], _content_type=MERGE
            )
            for w in work
            if w["table"] is not None
        )
        note(f"fair floor: {objects_of(work)} objects created in {took:.2f} s")
        await self.clear(self.floor_ns)
        await self.custom.delete_collection_namespaced_custom_object(
            "modelzoo.io", "v1alpha1", self.floor_ns, "zootrainingjobs"
        )
        await self.core.delete_collection_namespaced_config_map(self.floor_ns)
        await self.client.NetworkingV1Api(self.core.api_client).delete_collection_namespaced_network_policy(
            self.floor_ns
        )
        for svc in (await self.core.list_namespaced_service(self.floor_ns)).items:
            await self.core.delete_namespaced_service(svc.metadata.name, self.floor_ns)
        return took, work

    async def clear(self, ns: str) -> None:
        """Force-delete every pod of the namespace (no kubelet confirms a graceful deletion) and wait."""
        try:
            await self.core.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
        except self.client.ApiException as err:
            if err.status != 504:
                raise
            # A loaded apiserver answers 504 after 60 s while it goes on deleting (512 pods at load 47): wait.
            note(f"delete pods of {ns}: 504; waiting for them to go")

        async def gone() -> bool:
            return not (await self.core.list_namespaced_pod(ns, limit=1)).items

        await self.wait(f"pods of {ns} gone", gone, 600, every=0.5)

    async def operator_run(self, bodies: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
        """Create the jobs; seconds until every pod exists, and from the last annotation to completed tables."""
        total = sum(pods_of(b) for b in bodies)
        seen: set[str] = set()
        done = asyncio.Event()
        seen_at: list[float] = []

        def saw(name: str) -> None:
            seen.add(name)
            if len(seen) >= total and not done.is_set():
                seen_at.append(time.monotonic())
                done.set()

        async def watch_pods() -> None:
            """A raw watch (one JSON event a line): the time each pod was first seen. A loaded apiserver ends
            watches early: then a list catches up and the watch goes on from the list's resourceVersion."""
            version = None
            while not done.is_set():
                if version is not None:
                    listed = await self.core.list_namespaced_pod(self.op_ns)
                    for pod in listed.items:
                        saw(pod.metadata.name)
                    version = listed.metadata.resource_version
                resp = await self.core.list_namespaced_pod(
                    self.op_ns,
                    watch=True,
                    timeout_seconds=900,
                    resource_version=version,
                    _preload_content=False,
                )
                try:
                    while raw := await resp.content.readline():
                        event = json.loads(raw)
                        if event.get("type") == "ADDED":
                            saw(event["object"]["metadata"]["name"])
                finally:
                    resp.release()
                version = version or ""

        async def poll_pods() -> None:
            """Backstop for a watch that stalls: a list every 2 s (its time counts only if the watch missed)."""
            while not done.is_set():
                await asyncio.sleep(2)
                if len(await self.pod_names(self.op_ns)) >= total and not done.is_set():
                    note("the watch missed pods: timed by the list")
                    seen_at.append(time.monotonic())
                    done.set()

        watcher = asyncio.get_running_loop().create_task(watch_pods())
        poller = asyncio.get_running_loop().create_task(poll_pods())
        await asyncio.sleep(1.0)  # the watch is open
        start = time.monotonic()
        await bounded(
            lambda b=b: self.custom.create_namespaced_custom_object(
                "modelzoo.io", "v1alpha1", self.op_ns, "zootrainingjobs", b
            )
            for b in bodies
        )
        await asyncio.wait_for(done.wait(), 1200)
        created = seen_at[0] - start
        note(f"operator: {total} pods created in {created:.2f} s")
        for task in (watcher, poller):
            task.cancel()
        await asyncio.gather(watcher, poller, return_exceptions=True)

        async def all_bound() -> bool:
            pods = await self.pod_names(self.op_ns)
            return len(pods) >= total and all(p.spec.node_name for p in pods)

        await self.wait("all pods bound", all_bound, 600, every=0.5)
        note("all pods bound; writing device annotations")
        pods = await self.pod_names(self.op_ns)
        slots: dict[str, int] = {}
        patches = []
        per_pod = {b["metadata"]["name"]: b["spec"]["replicas"] // pods_of(b) for b in bodies}
        for p in sorted(pods, key=lambda p: p.metadata.name):
            node = int(p.spec.node_name.rsplit("-", 1)[1])
            count = per_pod[p.metadata.labels[JOB_LABEL]]
            device = slots.get(p.spec.node_name, 0)
            slots[p.spec.node_name] = device + count
            patches.append((p.metadata.name, device_annotation(p.metadata.name, node, device, count)))
        await bounded(
            lambda name=name, ann=ann: self.core.patch_namespaced_pod(
                name, self.op_ns, {"metadata": {"annotations": {ANNOTATION: ann}}}
            )
            for name, ann in patches
        )
        last = time.monotonic()

        async def tables_complete() -> bool:
            # raw JSON: turning a 4096-rank table into client models 20 times a second takes the CPU the
            # operator is being timed on
            resp = await self.core.list_namespaced_config_map(self.op_ns, _preload_content=False)
            try:
                cms = json.loads(await resp.read())["items"]
            finally:
                resp.release()
            done = [
                cm
                for cm in cms
                if cm["metadata"]["name"].endswith("-ranktable")
                and table_status((cm.get("data") or {}).get("hccl.json")) == "completed"
            ]
            # the biggest completed ConfigMap's data, in bytes (the apiserver's limit is 1 MiB)
            self.table_bytes = max(
                (sum(len(k) + len(v.encode()) for k, v in (cm.get("data") or {}).items()) for cm in done),
                default=0,
            )
            return len(done) >= len(bodies)

        try:
            await self.wait("rank tables completed", tables_complete, TABLE_TIMEOUT, every=0.05)
        except TimeoutError:  # reported as a miss (the row's table time is inf), the next scenario still runs
            note(f"rank tables NOT completed within {TABLE_TIMEOUT:.0f} s of the last annotation")
            return created, float("inf")
        took = time.monotonic() - last
        note(f"rank tables completed {took:.2f} s after the last annotation")
        return created, took

    async def raw_items(self, make: Callable[[], Awaitable[Any]]) -> list[dict[str, Any]]:
        """A list request's items as raw JSON (`make` passes _preload_content=False): no client models."""
        resp = await make()
        try:
            return list(json.loads(await resp.read())["items"])
        finally:
            resp.release()

    async def burst(self, bodies: Sequence[Mapping[str, Any]], timeout: float = 1200) -> dict[str, Any]:
        """Every job created at once (all creates in flight together, as a script's loop of `kubectl create &`
        would send them) and, polling every second from the first create on, seconds until every job is planned
        (has a status.phase: the operator's first pass is done) and until every pod exists; then the census."""
        expected = {b["metadata"]["name"]: pods_of(b) for b in bodies}
        refused: dict[str, int] = {}

        async def create(body: Mapping[str, Any]) -> None:
            try:
                await self.custom.create_namespaced_custom_object(
                    "modelzoo.io", "v1alpha1", self.op_ns, "zootrainingjobs", dict(body)
                )
            except self.client.ApiException as err:
                refused[str(err.status)] = refused.get(str(err.status), 0) + 1

        def jobs() -> Awaitable[list[dict[str, Any]]]:
            return self.raw_items(
                lambda: self.custom.list_namespaced_custom_object(
                    "modelzoo.io", "v1alpha1", self.op_ns, "zootrainingjobs", _preload_content=False
                )
            )

        def pods() -> Awaitable[list[dict[str, Any]]]:
            return self.raw_items(lambda: self.core.list_namespaced_pod(self.op_ns, _preload_content=False))

        total = sum(expected.values())
        start = time.monotonic()
        done: dict[str, float] = {}

        async def until(what: str, ready: Callable[[], Awaitable[bool]]) -> None:
            # Each list of 2400 pods takes seconds on a loaded machine: the two polls run apart, and the time is
            # taken when the list that first shows it returned (an upper bound, at most one list late).
            while time.monotonic() - start < timeout:
                if await ready():
                    done[what] = time.monotonic() - start
                    note(f"burst: {what} after {done[what]:.1f} s")
                    return
                await asyncio.sleep(1.0)

        async def all_planned() -> bool:
            got = await jobs()
            return len(got) >= len(bodies) and all((j.get("status") or {}).get("phase") for j in got)

        async def all_pods() -> bool:
            return len(await pods()) >= total

        polls = [
            asyncio.ensure_future(until(w, f)) for w, f in (("planned", all_planned), ("pods", all_pods))
        ]
        await asyncio.gather(*(create(b) for b in bodies))
        accepted_s = time.monotonic() - start
        await asyncio.gather(*polls)
        planned_s, pods_s = done.get("planned"), done.get("pods")
        await asyncio.sleep(5)  # a late duplicate would show now
        return {
            "accepted_s": accepted_s,
            "refused": refused,
            "planned_s": planned_s,
            "pods_s": pods_s,
            **census(await jobs(), await pods(), expected),
        }

    async def remove_jobs(self) -> None:
        await self.custom.delete_collection_namespaced_custom_object(
            "modelzoo.io", "v1alpha1", self.op_ns, "zootrainingjobs"
        )
        await self.clear(self.op_ns)

    async def teardown(self, nodes: int) -> None:
        if self._beating is not None:
            self._stop_beats.set()
            self._beating.join(timeout=30)
        for ns in (self.op_ns, self.floor_ns):
            try:
                await self.clear(ns)
                await self.core.delete_namespace(ns)
            except self.client.ApiException:
                pass
        await bounded(lambda i=i: self.core.delete_node(f"bench-node-{i}") for i in range(nodes))


class OperatorProcess:
    """The operator child and what /proc says about it."""

    def __init__(
        self, namespace: str, kubeconfig: str, workdir: Path, code: str | None = None, trace: bool = False
    ) -> None:
        self.stats = workdir / "operator-stats.json"
        self.log = workdir / "operator.log"
        env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "ZOO_WATCH_NAMESPACES": namespace,
            "ZOO_HEALTH_PORT": "0",
            "ZOO_METRICS_PORT": "0",
        }
        if trace:
            env["ZOO_BENCH_TRACEMALLOC"] = "1"
        if code:  # another checkout's operator (a before/after comparison); the floor stays this one's
            top = Path(code)
            env["PYTHONPATH"] = os.pathsep.join(
                [str(top / "operator"), str(top / "workloads"), *filter(None, [env.get("PYTHONPATH")])]
            )
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--operator-child", str(self.stats)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"operator did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)

    def cpu(self) -> float:
        return cpu_seconds(Path(f"/proc/{self.proc.pid}/stat").read_text())

    def rss(self) -> float:
        return peak_rss_mib(Path(f"/proc/{self.proc.pid}/status").read_text())

    async def requests(self) -> int:
        """The operator's API requests so far (kube.call's counter, all verbs)."""
        return sum((await self.requests_by()).values())

    async def requests_by(self) -> dict[str, int]:
        """The operator's API requests so far, by verb (create, patch, list, ...)."""
        before = self.stats.stat().st_mtime_ns if self.stats.exists() else 0
        self.proc.send_signal(signal.SIGUSR1)
        for _ in range(100):
            if self.stats.exists() and self.stats.stat().st_mtime_ns != before:
                break
            await asyncio.sleep(0.05)
        return dict(json.loads(self.stats.read_text())["requests"])

    async def failures(self) -> dict[str, int]:
        """The operator's failed API tries so far, by status (429, 409, ...) or error class."""
        await self.requests_by()  # a fresh dump
        return dict(json.loads(self.stats.read_text()).get("failures", {}))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def scenario(
    bench: Bench, op: OperatorProcess, name: str, bodies: list[dict[str, Any]], idle: float, repeat: int = 1
) -> dict[str, Any]:
    """One scenario, `repeat` times in turn (floors, operator; the medians are reported: on a loaded machine
    neighbouring runs differ by 2x), then the idle measurement with the last run's jobs in place."""
    note(f"scenario {name}")
    runs: list[dict[str, float]] = []
    for i in range(repeat):
        if i:
            await bench.remove_jobs()
        floor_s = await bench.floor(bodies)
        fair_s, work = await bench.fair_floor(bodies)
        before = await op.requests_by()
        op_s, table_s = await bench.operator_run(bodies)
        await asyncio.sleep(5)  # let the last status writes land
        after = await op.requests_by()
        runs.append(
            {
                "op_created_s": op_s,
                "floor_created_s": floor_s,
                "fair_floor_s": fair_s,
                "table_s": table_s,
                "op_requests": sum(after.values()) - sum(before.values()),
            }
        )
    cpu0, req0 = op.cpu(), await op.requests()
    await asyncio.sleep(idle)
    cpu1, req1 = op.cpu(), await op.requests()
    row = {
        "scenario": name,
        "pods": sum(pods_of(b) for b in bodies),
        "ranks": sum(b["spec"]["replicas"] for b in bodies),
        "table_kib": bench.table_bytes / 1024,
        **{key: statistics.median(r[key] for r in runs) for key in runs[0]},
        "runs": runs,
        "jobs": len(bodies),
        "op_requests_by": {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)},
        "floor_requests": floor_requests(work),
        "objects": objects_of(work),
        "idle_s": idle,
        "idle_cpu_s": cpu1 - cpu0,
        "idle_requests_per_min": (req1 - req0) * 60 / idle,
        "peak_rss_mib": op.rss(),
    }
    stats = json.loads(op.stats.read_text())
    if "traced_mib" in stats:  # --tracemalloc: where the memory is, after the scenario
        row["traced"] = {k: v for k, v in stats.items() if k != "requests"}
    print(json.dumps(row), flush=True)
    await bench.remove_jobs()
    return row


async def burst_scenario(bench: Bench, op: OperatorProcess, n: int) -> dict[str, Any]:
    """N jobs of 8 created at once (issue 24): time to all planned and all pods, the operator's API requests,
    failed tries (429 throttling, 409 conflicts, 5xx, timeouts) and peak RSS, and the census (none lost or
    doubled). No floors: the many-jobs scenario compares those."""
    name = f"{n} jobs of 8 at once"
    note(f"scenario {name}")
    bodies = [bench_job(f"b{i}", 8) for i in range(n)]
    before, failed_before = await op.requests_by(), await op.failures()
    got = await bench.burst(bodies)
    after, failed_after = await op.requests_by(), await op.failures()
    row = {
        "scenario": name,
        "jobs": n,
        "pods": sum(pods_of(b) for b in bodies),
        **got,
        "op_requests": sum(after.values()) - sum(before.values()),
        "op_failures": {
            k: v - failed_before.get(k, 0) for k, v in failed_after.items() if v != failed_before.get(k, 0)
        },
        "peak_rss_mib": op.rss(),
    }
    print(json.dumps(row), flush=True)
    import aiohttp

    try:
        await bench.remove_jobs()
    except (bench.client.ApiException, aiohttp.ClientError, TimeoutError) as exc:
        # e.g. a loaded apiserver drops a long delete-collection (seen): the teardown deletes the namespace
        note(f"removing the burst's jobs failed ({exc!r}); the teardown deletes the namespace")
    return row


def burst_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The markdown table of the at-once scenarios."""

    def secs(v: float | None) -> str:
        return "never" if v is None else f"{v:.1f} s"

    head = (
        "| scenario | creates accepted in | all planned | all pods | lost / unplanned / wrong pod count / "
        "duplicate ranks / foreign pods | operator requests (per job) | operator failed tries | peak RSS |"
    )
    out = [
        head,
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        failures = ", ".join(f"{k}: {v}" for k, v in sorted(r["op_failures"].items())) or "none"
        refused = f" ({sum(r['refused'].values())} refused)" if r["refused"] else ""
        out.append(
            f"| {r['scenario']} | {r['accepted_s']:.1f} s{refused} | {secs(r['planned_s'])} | {secs(r['pods_s'])} | "
            f"{r['lost']} / {r['unplanned']} / {r['wrong_pod_count']} / {r['duplicate_ranks']} / "
            f"{r['foreign_pods']} | {r['op_requests']} ({r['op_requests'] / r['jobs']:.1f}) | {failures} | "
            f"{r['peak_rss_mib']:.0f} MiB |"
        )
    return "\n".join(out)


def install_crd(kubeconfig: str) -> None:
    """Apply the ZooTrainingJob CRD and wait until it is served."""
    kubectl = [str(REPO / ".cache" / "bin" / "kubectl"), f"--kubeconfig={kubeconfig}"]
    crd = REPO / "manifests" / "base" / "crd.yaml"
    subprocess.run([*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(crd)], check=True)
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Established", "crd/zootrainingjobs.modelzoo.io", "--timeout=60s"],
        check=True,
    )


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    from kubernetes_asyncio import client, config

    kubeconfig = os.environ.get("KUBECONFIG") or str(REPO / ".cache" / "test-cluster" / "kubeconfig")
    await asyncio.to_thread(install_crd, kubeconfig)
    await config.load_kube_config(config_file=kubeconfig)
    api = client.ApiClient()
    suffix = secrets.token_hex(3)
    bench = Bench(api, f"bench-op-{suffix}", f"bench-floor-{suffix}")
    devices = [int(d) for d in args.devices.split(",") if d]
    servers = [int(d) for d in args.server.split(",") if d]
    nodes = nodes_needed(max(devices + servers + [args.jobs * 8, args.at_once * 8]))
    await bench.setup(nodes)
    workdir = Path(args.workdir or f"/tmp/zoo-scale-{suffix}")
    workdir.mkdir(parents=True, exist_ok=True)
    op = OperatorProcess(bench.op_ns, kubeconfig, workdir, args.operator_code, args.tracemalloc)
    rows = []
    try:
        await asyncio.to_thread(op.wait_ready)
        for n in servers:
            body = bench_job(f"s{n}", n, server=True)
            rows.append(
                await scenario(bench, op, f"1 job of {n}, server pods", [body], args.idle, args.repeat)
            )
        for n in devices:
            rows.append(
                await scenario(bench, op, f"1 job of {n}", [bench_job(f"n{n}", n)], args.idle, args.repeat)
            )
        if args.jobs:
            bodies = [bench_job(f"j{i}", 8) for i in range(args.jobs)]
            rows.append(await scenario(bench, op, f"{args.jobs} jobs of 8", bodies, args.idle, args.repeat))
        if args.at_once:
            rows.append(await burst_scenario(bench, op, args.at_once))
    finally:
        op.stop()
        await bench.teardown(nodes)
        await api.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devices", default="8,64,256,1024", help="comma-separated N (devices of one job)")
    parser.add_argument(
        "--server",
        default="",
        help="comma-separated N (ranks of one job of server pods: podsPer server, perNode 8)",
    )
    parser.add_argument("--jobs", type=int, default=100, help="jobs of 8 in the many-jobs scenario (0: skip)")
    parser.add_argument(
        "--at-once", type=int, default=0, help="jobs of 8 created all at once, then counted (0: skip)"
    )
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measurement per scenario")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario (medians are reported)")
    parser.add_argument("--json", help="write the raw rows here")
    parser.add_argument("--workdir", help="operator log and stats (default /tmp/zoo-scale-<id>)")
    parser.add_argument(
        "--operator-code",
        help="a checkout whose operator to run (default: this one's), for before/after runs",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace the operator's Python memory (slower; the rows' `traced` says what holds it)",
    )
    parser.add_argument("--operator-child", metavar="STATS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.operator_child:
        return operator_child(args.operator_child)
    rows = asyncio.run(main_async(args))
    print(table([r for r in rows if "fair_floor_s" in r]))
    print(burst_table([r for r in rows if "planned_s" in r]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
