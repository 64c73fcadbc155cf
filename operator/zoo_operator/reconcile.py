"""One reconcile pass for one job: read, decide (pure), write status, then create/delete (through `kube`).

Called by the runner (runner.py) with the job body and its pods from the pod index. Per-job memory
(`JobMemory`) holds what must survive between passes but not an operator restart: parsed logs, the last status
write, what was already ensured. Everything in it can be rebuilt from the cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from zoo_operator import conditions as c
from zoo_operator import kube, logparse, metrics, policy, ranktable, render, results, spec, status
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings

log = logging.getLogger(__name__)
# Enough lines to find the latest step/epoch event even when people-lines interleave.
LOG_POLL_LINES = 200
LOG_CONCURRENCY = 16

EventSink = Callable[[str, str, str], None]  # (type Normal|Warning, reason, message)


@dataclasses.dataclass
class PodLog:
    """What the operator has read from one pod's log."""

    uid: str
    lines: list[str] = dataclasses.field(default_factory=list)
    progress: dict[str, Any] = dataclasses.field(default_factory=dict)
    rank: int | None = None
    result: dict[str, Any] | None = None
    final: bool = False


@dataclasses.dataclass
class JobMemory:
    """Per-job state between passes (kopf's per-object memo)."""

    last_status_write: float = 0.0
    last_log_poll: float = 0.0
    logs: dict[str, PodLog] = dataclasses.field(default_factory=dict)
    ensured_uid: str = ""
    rank_table_data: dict[str, str] | None = None
    pod_group_error: str | None = None
    # The status this operator last wrote. The body a pass sees may lag behind it (watch latency); a lagging
    # `restarts` would recreate pods of an attempt that was already given up.
    last_written: dict[str, Any] | None = None


def devices_of(job: spec.JobSpec, pods: Sequence[PodView]) -> list[ranktable.Device]:
    """The devices of the current workers: from the static map, else from the device-plugin annotations."""
    workers = {p.index: p for p in pods if p.role == c.ROLE_WORKER and not p.deleting and p.index is not None}
    if job.static_devices:
        return [ranktable.Device(render.worker_name(job, d.pod_index), d.server_id, d.device_id, d.device_ip,
                                 d.super_device_id, workers[d.pod_index].ip if d.pod_index in workers else None)
                for d in job.static_devices]
    devices = []
    for pod in workers.values():
        if not pod.device_annotation:
            continue
        try:
            dev = ranktable.parse_annotation(pod.device_annotation, pod.host_ip)  # node IP if the plugin omits it
        except ValueError as err:
            log.warning("pod %s: %s", pod.name, err)
            continue
        devices.append(dataclasses.replace(dev, pod_name=pod.name, container_ip=pod.ip))
    return devices


async def _read_logs(job: spec.JobSpec, pods: Sequence[PodView], mem: JobMemory, tail: int) -> None:
    todo = [p for p in pods if (p.running or p.terminated) and not (
        p.name in mem.logs and mem.logs[p.name].uid == p.uid and mem.logs[p.name].final)]
    if len(pods) > status.MAX_RANKS_WITH_LINES:
        # Big jobs: status keeps lines only for rank 0 and failed ranks, so only those logs are read.
        first = _rank0(job, pods, mem)
        todo = [p for p in todo if p.name in (first, render.worker_name(job, 0)) or p.failed]
    gate = asyncio.Semaphore(LOG_CONCURRENCY)

    async def one(pod: PodView) -> None:
        async with gate:
            text = await kube.pod_log(job.namespace, pod.name, max(tail, LOG_POLL_LINES))
        if text is None:
            return
        entry = mem.logs.get(pod.name)
        if entry is None or entry.uid != pod.uid:
            entry = mem.logs[pod.name] = PodLog(uid=pod.uid)
        events = logparse.parse_lines(text)
        entry.lines = logparse.last_lines(text, tail)
        entry.progress = logparse.fold_progress(entry.progress, events)
        entry.rank = next((ev["rank"] for ev in events), entry.rank)
        entry.result = logparse.record_from_events(events) or entry.result
        entry.final = pod.terminated

    await asyncio.gather(*(one(p) for p in todo))


def _rank0(job: spec.JobSpec, pods: Sequence[PodView], mem: JobMemory) -> str:
    """Name of the pod that is rank 0: the one whose log says so, else worker 0."""
    live = {p.name for p in pods}
    for name, entry in mem.logs.items():
        if entry.rank == 0 and name in live:
            return name
    return render.worker_name(job, 0)


def _result(job: spec.JobSpec, pods: Sequence[PodView], mem: JobMemory) -> dict[str, Any] | None:
    """The final record (termination message or `done` event; results.in_user_terms makes it status.result):
    rank 0's termination message first, then any rank's, then the logs' done event."""
    first = _rank0(job, pods, mem)
    ordered = sorted((p for p in pods if p.exit_code == 0), key=lambda p: p.name != first)
    for pod in ordered:
        term = logparse.parse_termination(pod.termination_message)
        if term and term["status"] == "succeeded":
            return term
    entry = mem.logs.get(first)
    return entry.result if entry else None


async def _resolve_from(job: spec.JobSpec,
                        prev: Mapping[str, Any]) -> tuple[spec.JobSpec, results.SourceError | None]:
    """spec.from against the named job, once: afterwards status.source holds it (issue 13)."""
    kept = results.Source.from_status(prev.get("source"))
    if kept is None and prev.get("phase") in c.FINISHED_PHASES:
        return job, None
    if kept is None:
        try:
            kept = results.resolve_source(job, await kube.get_job(job.namespace, str(job.from_job)))
        except results.SourceError as err:
            return job, err
    return dataclasses.replace(job, source=kept), None


async def _ensure_objects(job: spec.JobSpec, mem: JobMemory, emit: EventSink) -> bool:
    """Service, launch ConfigMap and PodGroup; True when created now (first pass for this job)."""
    if mem.ensured_uid == job.uid:
        return False
    created = await kube.create(render.service(job))
    created = await kube.create(render.launch_config_map(job, mem.rank_table_data)) or created
    if job.gang:
        try:
            await kube.create(render.pod_group(job))
            mem.pod_group_error = None
        except kube.MissingAPI as err:
            mem.pod_group_error = f"{err}; {render.gang_missing_hint(job)}"
            emit("Warning", c.REASON_VOLCANO_MISSING, mem.pod_group_error)
    mem.ensured_uid = job.uid
    if created:
        emit("Normal", c.REASON_JOB_CREATED,
             f"created Service {job.name} and ConfigMap {render.launch_config_map_name(job)}; creating the pods")
    return created


async def _sync_rank_table(job: spec.JobSpec, pods: Sequence[PodView], mem: JobMemory,
                           active: bool, emit: EventSink) -> status.RankTableInfo:
    devices = devices_of(job, pods)
    data = ranktable.config_map_data(devices, job.replicas, job.rank_table_version)
    state = ranktable.COMPLETED if len(devices) == job.replicas else ranktable.INITIALIZING
    if active and data != mem.rank_table_data:
        await kube.put_config_map(render.launch_config_map(job, data))
        if state == ranktable.COMPLETED:
            emit("Normal", c.REASON_RANK_TABLE_COMPLETED, f"rank table of {job.replicas} devices completed")
        mem.rank_table_data = data
    return status.RankTableInfo(render.ranktable_config_map_name(job), job.rank_table_version, state, len(devices))


async def _write_status(body: Mapping[str, Any], prev: Mapping[str, Any], new: dict[str, Any],
                        mem: JobMemory, settings: Settings, now: float, emit: EventSink) -> None:
    patch = status.patch_for(prev, new)
    if patch is None:
        return
    urgent = status.is_transition(prev, new)
    if not urgent and now - mem.last_status_write < settings.status_interval_seconds:
        return
    meta = body["metadata"]
    await kube.patch_job_status(meta["namespace"], meta["name"], patch)
    mem.last_status_write = now
    mem.last_written = dict(new)
    metrics.observe_transition(prev, new)
    if urgent:
        log.info("%s/%s: %s %s: %s", meta["namespace"], meta["name"], new.get("phase"), new.get("reason"),
                 new.get("message"))
        kind = "Warning" if new.get("phase") in (c.FAILED, c.RESTARTING) else "Normal"
        emit(kind, str(new.get("reason") or new.get("phase")), str(new.get("message") or ""))


async def reconcile(body: Mapping[str, Any], pods: Sequence[PodView], settings: Settings, mem: JobMemory,
                    now: float, emit: EventSink) -> None:
    """One pass over one job."""
    meta = body.get("metadata") or {}
    prev = dict(mem.last_written if mem.last_written is not None else body.get("status") or {})
    generation = int(meta.get("generation") or 0)
    try:
        job = spec.parse(body, settings)
    except spec.InvalidSpec as err:
        await _write_status(body, prev, status.invalid(prev, str(err), generation, now), mem, settings, now, emit)
        return
    state = policy.state_from_status(prev)
    if state.reason == c.REASON_INVALID_SPEC and prev.get("observedGeneration") != generation:
        state, prev = policy.JobState(), {}  # the spec was fixed: start over
    if job.from_job:  # issue 13: evaluate/export/fine-tune from a finished job's checkpoint
        job, problem = await _resolve_from(job, prev)
        if problem:
            new = (results.waiting_status(prev, str(problem), generation, now) if problem.waiting
                   else status.invalid(prev, str(problem), generation, now))
            await _write_status(body, prev, new, mem, settings, now, emit)
            return
    decision = policy.decide(job, state, pods, now)
    if decision.delete_job:
        emit("Normal", c.REASON_TTL_EXPIRED, "spec.runPolicy.ttlSecondsAfterFinished passed: deleting the job")
        await kube.delete_job(job.namespace, job.name)
        return
    active = decision.phase not in c.FINISHED_PHASES and decision.phase != c.SUSPENDED
    created = False
    if active:
        created = await _ensure_objects(job, mem, emit)
    if decision.delete or now - mem.last_log_poll >= settings.status_interval_seconds:
        # Read logs before any pod goes away, so the last lines of every rank stay in status.
        await _read_logs(job, pods, mem, settings.log_tail_lines)
        mem.last_log_poll = now
    table = await _sync_rank_table(job, pods, mem, active, emit) if job.launch == "ranktable" else None
    rank0 = mem.logs.get(_rank0(job, pods, mem))
    lines = {name: entry.lines for name, entry in mem.logs.items()}
    was_created = created or any(x.get("type") == c.CREATED for x in prev.get("conditions") or []) or bool(pods)
    new = status.compute(prev=prev, state=state, decision=decision, pods=pods, replicas=job.replicas,
                         generation=generation, now=now, rank_table=table,
                         progress=(rank0.progress if rank0 else prev.get("progress") or {}), lines=lines,
                         result=results.in_user_terms(_result(job, pods, mem), job) or prev.get("result"),
                         created=was_created)
    # issue 13: what the job was built from, and a warning when its checkpoints die with its pods.
    if job.source is not None:
        new["source"] = job.source.status()
    ephemeral = results.ephemeral_checkpoints(job)
    if ephemeral and not any(x.get("type") == c.CHECKPOINTS_EPHEMERAL for x in new["conditions"]):
        emit("Warning", c.REASON_EPHEMERAL_VOLUME, ephemeral)
    if ephemeral:
        new["conditions"] = status.set_condition(new["conditions"], c.CHECKPOINTS_EPHEMERAL, True,
                                                 c.REASON_EPHEMERAL_VOLUME, ephemeral, now)
    if job.gang:
        ok = mem.pod_group_error is None
        new["conditions"] = status.set_condition(
            new["conditions"], c.POD_GROUP_READY, ok,
            c.REASON_POD_GROUP_CREATED if ok else c.REASON_VOLCANO_MISSING,
            "Volcano PodGroup created" if ok else str(mem.pod_group_error), now)
    # Status first: a restart is counted before its pods go, so a crash in between cannot lose it.
    await _write_status(body, prev, new, mem, settings, now, emit)
    for name in decision.delete:
        await kube.delete_pod(job.namespace, name)
    for name in policy.kueue_release(pods):  # issue 15: Kueue holds deleted pods of a group until replaced
        await kube.remove_pod_finalizer(job.namespace, name, c.KUEUE_FINALIZER)
    attempt = state.restarts + (1 if decision.restart else 0)
    for index in decision.create:
        await kube.create(render.pod(job, index, attempt))
