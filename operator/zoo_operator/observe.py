"""Stage 1 of a pass: every read the pass makes, once, before anything is decided (reconcile.py).

`read_job` reads into one `Observation` what the planner needs besides the job body and its pods (which the
runner brings from its watch indexes):
- the kubelet's newest Warning Event of a pod that does not start (podwarnings.py; a few per pass, cached);
- for `spec.from`, the named job, until status.source records it (issue 13);
- whether the cluster serves the job's PodGroup API, once per job that asks for a gang;
- the log tails of pods that ended and were not read yet, and of running pods the pass is about to delete
  (a restart, a suspend), so that every rank's last lines reach status;
- while the gang runs, the nodes of its pods (Ready) and, for Ascend jobs, their device-info ConfigMaps (faults.py,
  issue 23), folded into the pod views: from the shared watch index (nodehealth.py, issue 25), by name only
  for nodes it cannot answer for.

Which tails are needed depends on what run policy will decide: observe asks the same pure decision the planner
uses (admission.decide_pass), so the reads are complete before the planner runs and it never reads itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from zoo_operator import admission, faults, kube, planner, podwarnings, policy, render, results, spec, status
from zoo_operator import conditions as c
from zoo_operator import nodehealth as health
from zoo_operator.memory import JobMemory, Observation, Tail, rank0, starting_status
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings

# Enough lines to find the latest step/epoch event even when people-lines interleave.
LOG_POLL_LINES = 200
LOG_CONCURRENCY = 16


def needs_source(job: spec.JobSpec, prev: Mapping[str, Any]) -> bool:
    """Whether the job spec.from names must be read: not yet recorded in status.source, job not finished."""
    return (
        bool(job.from_job)
        and results.Source.from_status(prev.get("source")) is None
        and prev.get("phase") not in c.FINISHED_PHASES
    )


def tails_to_read(
    job: spec.JobSpec, pods: Sequence[PodView], mem: JobMemory, decision: policy.Decision
) -> list[PodView]:
    """Pods whose log tail is read now: those that ended, once each; before a restart or suspend deletes
    running ranks, those too (small jobs only). Big jobs keep lines only for rank 0 and failed ranks."""
    if decision.delete_job:
        return []
    going = set(decision.delete) if len(pods) <= status.MAX_RANKS_WITH_LINES else set()
    todo = []
    for p in pods:
        entry = mem.logs.get(p.name)
        if entry is not None and entry.uid == p.uid and entry.final:
            continue
        if p.terminated or (p.running and p.name in going):
            todo.append(p)
    if len(pods) > status.MAX_RANKS_WITH_LINES:
        first = rank0(job, pods, mem.logs, mem.table.rank0)
        todo = [p for p in todo if p.name == first or p.failed]
    return todo


async def read_tails(pods: Sequence[PodView], namespace: str, tail: int) -> dict[str, Tail]:
    """The last lines of each pod's log (bounded concurrency); pods whose log is gone are left out."""
    gate = asyncio.Semaphore(LOG_CONCURRENCY)
    out: dict[str, Tail] = {}

    async def one(pod: PodView) -> None:
        async with gate:
            text = await kube.pod_log(namespace, pod.name, max(tail, LOG_POLL_LINES))
        if text is not None:
            out[pod.name] = Tail(pod.uid, text, pod.terminated)

    await asyncio.gather(*(one(p) for p in pods))
    return out


async def read_job(
    body: Mapping[str, Any],
    pods: Sequence[PodView],
    settings: Settings,
    mem: JobMemory,
    now: float,
    existing: Collection[tuple[str, str]] | None = None,
) -> Observation:
    """Read everything this pass of this job needs (see the module doc)."""
    base = Observation(body=body, pods=tuple(pods), now=now, existing=existing)
    try:
        job = spec.parse(body, settings)
    except spec.InvalidSpec:
        return base  # the planner reports it; nothing else is read
    prev = starting_status(body, mem, valid=True)
    folded, warnings = await fold_pod_warnings(job.namespace, pods, mem.pod_warnings, now)
    if prev.get("phase") == c.RUNNING:
        folded = await read_health(job, folded)
    base = dataclasses.replace(base, pods=tuple(folded), pod_warnings=warnings)
    if needs_source(job, prev):
        source = await kube.get_job(job.namespace, str(job.from_job))
        base = dataclasses.replace(base, source=source, source_read=True)
        try:
            job = dataclasses.replace(job, source=results.resolve_source(job, source))
        except results.SourceError:
            return base  # the planner reports why; the job waits or is refused
    if job.gang and mem.ensured_uid != job.uid:
        group = render.pod_group(job)
        base = dataclasses.replace(base, pod_group_served=await kube.serves(group["apiVersion"], "podgroups"))
    _, decision = admission.decide_pass(job, prev, base.pods, mem.refusal, now)
    if decision.phase not in c.FINISHED_PHASES and decision.phase != c.SUSPENDED:  # issue 24 (guards.py)
        base = await read_guards(job, base, mem, prev, settings)
    todo = tails_to_read(job, base.pods, mem, decision)
    if todo:
        base = dataclasses.replace(base, tails=await read_tails(todo, job.namespace, settings.log_tail_lines))
    return base


def objects_by_name(
    job: spec.JobSpec, obs: Observation, mem: JobMemory, settings: Settings
) -> list[dict[str, Any]]:
    """The objects whose owner is read before the planner may create or write them by name: those it would
    create now (planner.objects_to_ensure: the first pass, or missing from the operator's index of its own
    objects), and those whose create was answered 409 (JobMemory.taken: a pod, or an object of another owner)."""
    out = planner.objects_to_ensure(job, mem, obs.existing, obs.pod_group_served, settings)
    known = {(o["kind"], o["metadata"]["name"]) for o in out}
    for kind, name in sorted(mem.taken - known):
        version = render.pod_group(job)["apiVersion"] if kind == "PodGroup" else "v1"
        out.append(
            {"apiVersion": version, "kind": kind, "metadata": {"namespace": job.namespace, "name": name}}
        )
    return out


async def read_guards(
    job: spec.JobSpec, obs: Observation, mem: JobMemory, prev: Mapping[str, Any], settings: Settings
) -> Observation:
    """The owners of the objects named by `objects_by_name`; and, while the job has no pods or waits for it,
    whether the LocalQueue spec.scheduling.queue names exists (guards.py)."""
    todo = objects_by_name(job, obs, mem, settings)
    if todo:
        uids = await asyncio.gather(*(kube.controller_uid(o) for o in todo))
        owners = {
            (o["kind"], o["metadata"]["name"]): u for o, u in zip(todo, uids, strict=True) if u is not None
        }
        obs = dataclasses.replace(obs, owners=owners)
    waited = any(
        x.get("type") == c.QUEUE_FOUND and x.get("status") == "False" for x in prev.get("conditions") or []
    )
    if job.queue and (not obs.pods or waited):
        obs = dataclasses.replace(obs, local_queue=await kube.local_queue_exists(job.namespace, job.queue))
    return obs


async def read_health(job: spec.JobSpec, pods: Sequence[PodView]) -> list[PodView]:
    """The pods with their nodes' health folded in (faults.fold): each node's Ready condition, and for jobs on
    an Ascend device resource the NPUs its device plugin reports unhealthy. From the shared watch index
    (nodehealth.py, issue 25): no request per pass; by name only for nodes the index cannot answer for."""
    nodes = sorted({p.node for p in pods if p.node and not p.deleting})
    if not nodes:
        return list(pods)
    resource = job.resource_name if job.device_type == "Ascend910" and job.resource_name else None
    health.INDEX.want(devices=resource is not None)
    ready, unhealthy, read_nodes, read_devices = health.INDEX.lookup(nodes, resource)
    if read_nodes:
        bodies = await asyncio.gather(*(kube.get_node(n) for n in read_nodes))
        ready.update({n: faults.node_ready(b) for n, b in zip(read_nodes, bodies, strict=True)})
    if resource and read_devices:
        datas = await asyncio.gather(
            *(
                kube.get_config_map_data(faults.DEVICE_INFO_NAMESPACE, faults.device_info_name(n))
                for n in read_devices
            )
        )
        unhealthy.update(
            {n: faults.unhealthy_npus(d, resource) for n, d in zip(read_devices, datas, strict=True)}
        )
    return faults.fold(pods, ready, unhealthy)


async def fold_pod_warnings(
    namespace: str, pods: Sequence[PodView], cache: podwarnings.Cache, now: float
) -> tuple[list[PodView], podwarnings.Cache]:
    """The pods, with a stuck pod's newest Warning Event as its waiting_message, and the job's cache after
    this pass's reads (a new dict: the executor stores it, the caller's `cache` is left as it was)."""
    live = {p.uid for p in pods}
    after: podwarnings.Cache = {uid: seen for uid, seen in cache.items() if uid in live}
    out: list[PodView] = []
    reads = 0
    for pod in pods:
        if podwarnings.needs_look(pod, now):
            seen = after.get(pod.uid)
            due = seen is None or now - seen[0] >= podwarnings.START_WARNING_REREAD_SECONDS
            if due and reads < podwarnings.START_WARNING_READS_PER_PASS:
                reads += 1
                warnings = await kube.pod_warnings(namespace, pod.name)
                seen = after[pod.uid] = (now, ": ".join(warnings[-1]) if warnings else "")
            if seen and seen[1]:
                pod = dataclasses.replace(pod, waiting_message=seen[1])
        out.append(pod)
    return out, after
