"""One reconcile pass for one job: decide, read what is needed, plan (pure), then execute the plan.

Called by the runner (runner.py) with the job body, its pods from the pod index and, when known, which of the
job's Service and launch ConfigMap exist (from the operator's index of them). A pass

1. decides (policy.decide, pure);
2. reads the log tails of ranks that ended and were not read yet (once per pod: their lastLines and result),
   and ensures the job's fixed objects (Service, launch ConfigMap, PodGroup) exist;
3. plans (`plan`, pure): the new status and its patch, the rank-table ConfigMap when the devices changed, pods
   to delete and create, events, the rank-0 pod whose log is followed, and when the job next needs a pass;
4. executes the plan (`execute`): status first, then deletions and creations, each concurrent and bounded.

Per-job memory (`JobMemory`) holds what must survive between passes but not an operator restart: parsed logs,
the last status write, the last rank table. Everything in it can be rebuilt from the cluster. Progress is not
polled: the runner follows rank 0's log as a stream (`feed_lines` folds the lines into the memory).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from zoo_operator import (
    admission,
    history,
    kube,
    limits,
    logparse,
    metrics,
    podwarnings,
    policy,
    ranktable,
    render,
    results,
    spec,
    status,
)
from zoo_operator import conditions as c
from zoo_operator.podview import PodView, parse_time
from zoo_operator.settings import Settings

log = logging.getLogger(__name__)
# Enough lines to find the latest step/epoch event even when people-lines interleave.
LOG_POLL_LINES = 200
LOG_CONCURRENCY = 16
# Pod creations and deletions in flight at once, per pass.
WRITES_IN_FLIGHT = 64
# An active job gets a pass at least this often even when no event comes (a missed watch event heals).
RESYNC_SECONDS = 300.0
# A TTL that has passed while the job is not deleted yet (its deletion failed) is tried again after this long.
MIN_DELAY_SECONDS = 1.0

EventSink = Callable[[str, str, str], None]  # (type Normal|Warning, reason, message)
Obj = dict[str, Any]


@dataclasses.dataclass
class PodLog:
    """What the operator has read from one pod's log."""

    uid: str
    lines: list[str] = dataclasses.field(default_factory=list)
    progress: dict[str, Any] = dataclasses.field(default_factory=dict)
    rank: int | None = None
    result: dict[str, Any] | None = None
    final: bool = False
    checkpoints: dict[str, Any] = dataclasses.field(default_factory=dict)  # logparse.fold_checkpoints
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # per-epoch (history.py)

    def fold(self, events: list[dict[str, Any]]) -> None:
        """Fold parsed JSON events: progress, rank, result record, checkpoints, per-epoch history."""
        self.progress = logparse.fold_progress(self.progress, events)
        self.rank = next((ev["rank"] for ev in events if "rank" in ev), self.rank)
        self.result = logparse.record_from_events(events) or self.result
        self.checkpoints = logparse.fold_checkpoints(self.checkpoints, events)
        self.history = history.fold(self.history, events)  # console: per-epoch history (issue 12)


@dataclasses.dataclass
class JobMemory:
    """Per-job state between passes (kopf's per-object memo)."""

    uid: str = ""  # the job it belongs to (a new job of the same name gets a new memory)
    last_status_write: float = 0.0
    logs: dict[str, PodLog] = dataclasses.field(default_factory=dict)
    ensured_uid: str = ""
    # The rank table as last written, and the device inputs it was built from (rebuilt only when they change).
    rank_table_data: dict[str, str] | None = None
    rank_table_inputs: tuple[Any, ...] | None = None
    rank_table_devices: int = 0
    rank_table_built: dict[str, str] | None = None
    parsed_annotations: dict[str, tuple[str, ranktable.Device | None]] = dataclasses.field(default_factory=dict)
    rank0_of_table: str = ""  # the pod holding rank 0 in the current rank table (ranktable.order)
    pod_group_error: str | None = None
    # The status this operator last wrote. The body a pass sees may lag behind it (watch latency); a lagging
    # `restarts` would recreate pods of an attempt that was already given up.
    last_written: dict[str, Any] | None = None
    # The apiserver's last refusal to create one of the job's pods (admission.py), None once creation works.
    refusal: admission.Refusal | None = None
    announced: set[str] = dataclasses.field(default_factory=set)  # checkpoint Events already emitted
    # Issue 11: pod uid -> (when read, the kubelet's newest Warning Event on a pod that does not start).
    pod_warnings: dict[str, tuple[float, str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Plan:
    """Everything one pass writes, computed without I/O; `execute` carries it out in this order."""

    status: dict[str, Any] | None = None  # the new status, when it is written now
    status_patch: dict[str, Any] | None = None
    urgent: bool = False
    config_map: Obj | None = None  # the rank-table ConfigMap, when its data changed
    delete: tuple[str, ...] = ()
    release: tuple[str, ...] = ()  # deleted pods whose Kueue finalizer the operator removes (policy.kueue_release)
    unretriable: tuple[str, ...] = ()  # a finished job's Kueue pods to mark (policy.kueue_unretriable)
    create: list[Obj] = dataclasses.field(default_factory=list)
    delete_job: bool = False
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    follow: str | None = None  # the pod whose log to follow (rank 0, running)
    next_due: float | None = None  # unix time of the next pass this job needs, None when nothing is due


def devices_of(job: spec.JobSpec, pods: Sequence[PodView],
               parsed: dict[str, tuple[str, ranktable.Device | None]] | None = None) -> list[ranktable.Device]:
    """The devices of the current workers: from the static map, else from the device-plugin annotations.

    `parsed` caches each pod's parsed annotation (pod name -> (annotation, device)) between passes, so a pass
    parses only annotations that are new."""
    workers = {p.index: p for p in pods if p.role == c.ROLE_WORKER and not p.deleting and p.index is not None}
    if job.static_devices:
        return [ranktable.Device(render.worker_name(job, d.pod_index), d.server_id, d.device_id, d.device_ip,
                                 d.super_device_id, workers[d.pod_index].ip if d.pod_index in workers else None)
                for d in job.static_devices]
    cache = parsed if parsed is not None else {}
    devices = []
    for pod in workers.values():
        if not pod.device_annotation:
            continue
        key = f"{pod.device_annotation}@{pod.host_ip}"
        hit = cache.get(pod.name)
        if hit is not None and hit[0] == key:
            dev = hit[1]
        else:
            try:
                dev = ranktable.parse_annotation(pod.device_annotation, pod.host_ip)  # node IP if omitted
            except ValueError as err:
                log.warning("pod %s: %s", pod.name, err)
                dev = None
            cache[pod.name] = (key, dev)
        if dev is not None:
            devices.append(dataclasses.replace(dev, pod_name=pod.name, container_ip=pod.ip))
    return devices


def rank_table_inputs(pods: Sequence[PodView]) -> tuple[Any, ...]:
    """What the rank table depends on in the pods (their device annotations and IPs): a cheap change key."""
    return tuple(sorted((p.name, p.index, p.device_annotation, p.ip, p.host_ip) for p in pods
                        if p.role == c.ROLE_WORKER and not p.deleting and p.index is not None
                        and (p.device_annotation or p.ip)))


def feed_lines(mem: JobMemory, pod: str, uid: str, lines: Iterable[str], tail: int) -> bool:
    """Fold log lines of `pod` into the memory (from a followed stream); True when its progress changed."""
    entry = mem.logs.get(pod)
    if entry is None or entry.uid != uid:
        entry = mem.logs[pod] = PodLog(uid=uid)
    text = "\n".join(lines)
    events = logparse.parse_lines(text)
    before = entry.progress
    entry.lines = (entry.lines + logparse.last_lines(text, tail))[-tail:] if tail > 0 else []
    entry.fold(events)
    return entry.progress != before


def rank0(job: spec.JobSpec, pods: Sequence[PodView], mem: JobMemory) -> str:
    """Name of the pod that is rank 0: the one whose log says so, else the rank table's, else worker 0."""
    live = {p.name for p in pods}
    for name, entry in mem.logs.items():
        if entry.rank == 0 and name in live:
            return name
    if mem.rank0_of_table in live:
        return mem.rank0_of_table
    return render.worker_name(job, 0)


def tails_to_read(job: spec.JobSpec, pods: Sequence[PodView], mem: JobMemory,
                  decision: policy.Decision) -> list[PodView]:
    """Pods whose log tail is read now: those that ended, once each; before a restart or suspend deletes
    running ranks, those too (small jobs only). Big jobs keep lines only for rank 0 and failed ranks."""
    going = set(decision.delete) if len(pods) <= status.MAX_RANKS_WITH_LINES else set()
    todo = []
    for p in pods:
        entry = mem.logs.get(p.name)
        if entry is not None and entry.uid == p.uid and entry.final:
            continue
        if p.terminated or (p.running and p.name in going):
            todo.append(p)
    if len(pods) > status.MAX_RANKS_WITH_LINES:
        first = rank0(job, pods, mem)
        todo = [p for p in todo if p.name == first or p.failed]
    return todo


async def read_tails(pods: Sequence[PodView], namespace: str, mem: JobMemory, tail: int) -> None:
    """Read the last lines of each pod's log once (bounded concurrency) into the memory."""
    gate = asyncio.Semaphore(LOG_CONCURRENCY)

    async def one(pod: PodView) -> None:
        async with gate:
            text = await kube.pod_log(namespace, pod.name, max(tail, LOG_POLL_LINES))
        if text is None:
            return
        entry = mem.logs.get(pod.name)
        if entry is None or entry.uid != pod.uid:
            entry = mem.logs[pod.name] = PodLog(uid=pod.uid)
        events = logparse.parse_lines(text)
        entry.lines = logparse.last_lines(text, tail)
        entry.fold(events)
        entry.final = pod.terminated

    await asyncio.gather(*(one(p) for p in pods))


def _result(job: spec.JobSpec, pods: Sequence[PodView], mem: JobMemory) -> dict[str, Any] | None:
    """The final record (termination message or `done` event; results.in_user_terms makes it status.result):
    rank 0's termination message first, then any rank's, then the logs' done event."""
    first = rank0(job, pods, mem)
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


def objects_to_ensure(job: spec.JobSpec, mem: JobMemory, existing: Collection[tuple[str, str]] | None) -> list[Obj]:
    """Service, launch ConfigMap and PodGroup to create: those `existing` lacks (kind, name), or, when it is
    not known, all of them on the first pass for this job."""
    if existing is None:
        if mem.ensured_uid == job.uid:
            return []
        objs = [render.service(job), render.launch_config_map(job, mem.rank_table_data)]
        return objs + ([render.pod_group(job)] if job.gang else [])
    out = []
    if ("Service", job.name) not in existing:
        out.append(render.service(job))
    if ("ConfigMap", render.launch_config_map_name(job)) not in existing:
        out.append(render.launch_config_map(job, mem.rank_table_data))
    if job.gang and mem.ensured_uid != job.uid:
        out.append(render.pod_group(job))
    return out


async def ensure_objects(job: spec.JobSpec, objs: Sequence[Obj], mem: JobMemory, emit: EventSink) -> bool:
    """Create the objects (all at once); True when the Service or ConfigMap was created now."""
    created: list[bool] = []

    async def one(obj: Obj) -> None:
        if obj["kind"] != "PodGroup":
            created.append(await kube.create(obj))
            return
        try:
            await kube.create(obj)
            mem.pod_group_error = None
        except kube.MissingAPI as err:
            mem.pod_group_error = f"{err}; {render.gang_missing_hint(job)}"
            emit("Warning", c.REASON_VOLCANO_MISSING, mem.pod_group_error)

    await bounded(lambda obj=obj: one(obj) for obj in objs)
    first = mem.ensured_uid != job.uid
    mem.ensured_uid = job.uid
    if any(created) and first:
        emit("Normal", c.REASON_JOB_CREATED,
             f"created Service {job.name} and ConfigMap {render.launch_config_map_name(job)}; creating the pods")
    elif any(created):
        log.info("%s/%s: recreated a missing Service or launch ConfigMap", job.namespace, job.name)
    return any(created)


def rank_table(job: spec.JobSpec, pods: Sequence[PodView], mem: JobMemory,
               active: bool, attempt: int = 0) -> tuple[status.RankTableInfo, Obj | None]:
    """The rank table's status, and the ConfigMap to write when its data changed (None otherwise).

    Only pods of `attempt` count: on a gang restart the table goes back to initializing at once, marked with the
    new attempt, and never lists a device of the old gang. The table is rebuilt and serialised only when the
    device inputs changed since the last pass."""
    pods = [p for p in pods if p.attempt == attempt]
    inputs = (job.uid, job.replicas, job.rank_table_version, attempt, rank_table_inputs(pods))
    if inputs != mem.rank_table_inputs or mem.rank_table_built is None:
        devices = devices_of(job, pods, mem.parsed_annotations)
        mem.rank_table_built = ranktable.config_map_data(devices, job.replicas, job.rank_table_version, attempt)
        ordered = ranktable.order(devices)  # the table's rank order: its first device is rank 0
        mem.rank0_of_table = ordered[0].pod_name if ordered and len(devices) == job.replicas else ""
        mem.rank_table_devices = len(devices)
        mem.rank_table_inputs = inputs
    known = mem.rank_table_devices
    state = ranktable.COMPLETED if known == job.replicas else ranktable.INITIALIZING
    info = status.RankTableInfo(render.ranktable_config_map_name(job), job.rank_table_version, state, known)
    data = mem.rank_table_built
    if active and data != mem.rank_table_data:
        return info, render.launch_config_map(job, data)
    return info, None


def next_due(job: spec.JobSpec, decision: policy.Decision, pods: Sequence[PodView], new: Mapping[str, Any],
             attempt: int, deferred: float | None, now: float) -> float | None:
    """When the job next needs a pass without any watch event: the earliest of TTL expiry, restart backoff end,
    activeDeadlineSeconds, a pending pod's scheduling timeout, a rate-limited status write and the resync;
    None for a finished or suspended job with nothing due."""
    times: list[float] = []
    if deferred is not None:
        times.append(deferred)
    completion = parse_time(new.get("completionTime"))
    if decision.phase in c.FINISHED_PHASES:
        ttl = job.ttl_seconds_after_finished
        if ttl is not None and completion is not None and not decision.delete_job:
            times.append(max(completion + ttl, now + MIN_DELAY_SECONDS))
        return min(times) if times else None
    if decision.phase == c.SUSPENDED:
        return min(times) if times else None
    times.append(now + RESYNC_SECONDS)
    start = parse_time(new.get("startTime"))
    if job.active_deadline_seconds is not None and start is not None:
        times.append(start + job.active_deadline_seconds)
    restarted = parse_time(new.get("restartTime"))
    if decision.phase == c.RESTARTING and restarted is not None:
        times.append(restarted + policy.restart_backoff(attempt))
    limit = job.scheduling_timeout_seconds
    # Only pods policy would time out without any new event: not scheduled, or failing to pull their image.
    waiting = [p.waiting_since for p in pods if p.waiting_since is not None
               and not (p.running or p.terminated or p.deleting or p.queued)]
    if waiting:
        times.append(min(waiting) + limit)
    if any(podwarnings.needs_look(p, now) for p in pods):  # issue 11: re-read why a pod does not start
        times.append(now + podwarnings.START_WARNING_REREAD_SECONDS)
    elif any(p.node and p.created is not None and not (p.running or p.terminated or p.deleting) for p in pods):
        times.append(min(p.created for p in pods if p.created is not None)
                     + podwarnings.START_WARNING_AFTER_SECONDS)
    # A time that has passed was this pass's to act on: it never makes the job due at once again (no spin).
    future = [t for t in times if t > now]
    return min(future) if future else None


def plan(body: Mapping[str, Any], job: spec.JobSpec, pods: Sequence[PodView], settings: Settings,
         mem: JobMemory, prev: Mapping[str, Any], state: policy.JobState, decision: policy.Decision,
         now: float, created: bool) -> Plan:
    """What this pass writes (pure apart from caching the rank table in `mem`)."""
    meta = body.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    # issue 15: Kueue holds the deleted pods of a preempted group until replaced; ours reuse their names.
    out = Plan(delete=decision.delete, release=policy.kueue_release(pods),
               unretriable=policy.kueue_unretriable(decision.phase, pods))
    if decision.delete_job:
        out.events.append(("Normal", c.REASON_TTL_EXPIRED,
                           "spec.runPolicy.ttlSecondsAfterFinished passed: deleting the job"))
        out.delete_job = True
        return out
    active = decision.phase not in c.FINISHED_PHASES and decision.phase != c.SUSPENDED
    attempt = state.restarts + (1 if decision.restart else 0)
    table = None
    if job.launch == "ranktable":
        table, out.config_map = rank_table(job, pods, mem, active, attempt)
        if out.config_map is not None and table.status == ranktable.COMPLETED:
            out.events.append(("Normal", c.REASON_RANK_TABLE_COMPLETED,
                               f"rank table of {job.replicas} devices completed"))
    first = rank0(job, pods, mem)
    entry = mem.logs.get(first)
    lines = {name: e.lines for name, e in mem.logs.items()}
    was_created = created or any(x.get("type") == c.CREATED for x in prev.get("conditions") or []) or bool(pods)
    new = status.compute(prev=prev, state=state, decision=decision, pods=pods, replicas=job.replicas,
                         generation=generation, now=now, rank_table=table,
                         progress=(entry.progress if entry else prev.get("progress") or {}), lines=lines,
                         result=results.in_user_terms(_result(job, pods, mem), job) or prev.get("result"),
                         created=was_created,
                         history=entry.history if entry else None)  # console: status.history (issue 12)
    out.events.extend(decision.events)  # issue 11: e.g. SpecChangeIgnored on a finished job
    # issue 13: what the job was built from, and a warning when its checkpoints die with its pods.
    if job.source is not None:
        new["source"] = job.source.status()
    ephemeral = results.ephemeral_checkpoints(job)
    if ephemeral and not any(x.get("type") == c.CHECKPOINTS_EPHEMERAL for x in new["conditions"]):
        out.events.append(("Warning", c.REASON_EPHEMERAL_VOLUME, ephemeral))
    if ephemeral:
        new["conditions"] = status.set_condition(new["conditions"], c.CHECKPOINTS_EPHEMERAL, True,
                                                 c.REASON_EPHEMERAL_VOLUME, ephemeral, now)
    # Checkpoints (issue 15): status.lastCheckpoint/resumes from rank 0; an Event per resume and skipped file.
    new = status.with_checkpoints(new, prev, entry.checkpoints if entry else {})
    invalid = {name: e.checkpoints.get("invalid") or [] for name, e in mem.logs.items()}
    for key, kind, reason, message in status.checkpoint_notices(prev, new, invalid):
        if key not in mem.announced:
            mem.announced.add(key)
            out.events.append((kind, reason, message))
    if job.gang:
        ok = mem.pod_group_error is None
        new["conditions"] = status.set_condition(
            new["conditions"], c.POD_GROUP_READY, ok,
            c.REASON_POD_GROUP_CREATED if ok else c.REASON_VOLCANO_MISSING,
            "Volcano PodGroup created" if ok else str(mem.pod_group_error), now)
    refusal = mem.refusal
    if refusal is not None and refusal.quota and decision.phase not in c.FINISHED_PHASES:
        new["conditions"] = status.set_condition(new["conditions"], c.PODS_ADMITTED, False,
                                                 c.REASON_QUOTA_EXCEEDED, admission.quote(refusal), now)
    elif refusal is None and any(x.get("type") == c.PODS_ADMITTED for x in new["conditions"]):
        new["conditions"] = status.set_condition(new["conditions"], c.PODS_ADMITTED, True,
                                                 c.REASON_PODS_ADMITTED, "the apiserver admitted the pods", now)
    new = limits.bound_status(new)  # issue 11: a status the apiserver always accepts, whatever logs and messages
    deferred = _status_write(out, prev, new, mem, settings, now)
    out.create = [render.pod(job, index, attempt) for index in decision.create]
    if active and first not in decision.delete:
        running = next((p for p in pods if p.name == first and p.running and not p.terminated), None)
        out.follow = running.name if running is not None else None
    out.next_due = next_due(job, decision, pods, new, attempt, deferred, now)
    if active:
        out.next_due = _earliest(out.next_due, admission.due(job, refusal, now))
    return out


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _status_write(out: Plan, prev: Mapping[str, Any], new: dict[str, Any], mem: JobMemory, settings: Settings,
                  now: float) -> float | None:
    """Put the status write into the plan; returns when a rate-limited write is due, None if none waits."""
    patch = status.patch_for(prev, new)
    if patch is None:
        return None
    urgent = status.is_transition(prev, new)
    if not urgent and now - mem.last_status_write < settings.status_interval_seconds:
        return mem.last_status_write + settings.status_interval_seconds
    out.status, out.status_patch, out.urgent = new, patch, urgent
    if urgent:
        kind = "Warning" if new.get("phase") in (c.FAILED, c.RESTARTING) else "Normal"
        out.events.append((kind, str(new.get("reason") or new.get("phase")), str(new.get("message") or "")))
    return None


async def bounded(calls: Iterable[Callable[[], Awaitable[Any]]], limit: int = WRITES_IN_FLIGHT) -> None:
    """Run the calls with at most `limit` in flight; all are tried, then the first error is raised."""
    gate = asyncio.Semaphore(limit)

    async def one(make: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await make()

    results = await asyncio.gather(*(one(m) for m in calls), return_exceptions=True)
    for res in results:
        if isinstance(res, BaseException):
            raise res


async def execute(body: Mapping[str, Any], the_plan: Plan, prev: Mapping[str, Any], mem: JobMemory,
                  now: float, emit: EventSink) -> None:
    """Carry out a plan. With pods to delete: rank table and status first (a restart is counted even if the
    operator dies before its pods go), then deletions, then creations. With none, the writes do not depend on
    each other and go out together. The events follow the status write."""
    meta = body.get("metadata") or {}
    job_ns, job_name = str(meta.get("namespace")), str(meta.get("name"))
    if the_plan.delete_job:
        for event in the_plan.events:
            emit(*event)
        await kube.delete_job(job_ns, job_name)
        return

    async def put_table() -> None:
        if the_plan.config_map is not None:
            await kube.put_config_map(the_plan.config_map)
            mem.rank_table_data = the_plan.config_map["data"]

    async def write_status() -> None:
        if the_plan.status_patch is not None and the_plan.status is not None:
            await kube.patch_job_status(job_ns, job_name, the_plan.status_patch)
            mem.last_status_write = now
            mem.last_written = dict(the_plan.status)
            metrics.observe_job(body, prev, the_plan.status)  # console: counters, gauges, histograms (issue 12)
            if the_plan.urgent:
                new = the_plan.status
                log.info("%s/%s: %s %s: %s", job_ns, job_name, new.get("phase"), new.get("reason"),
                         new.get("message"))
        for event in the_plan.events:
            emit(*event)

    async def create() -> None:
        if the_plan.create:
            refused = await create_pods(the_plan.create)
            mem.refusal = record_refusal(mem.refusal, refused, now)
            if mem.refusal is not None:
                log.warning("%s/%s: %s", job_ns, job_name, admission.quote(mem.refusal))

    if the_plan.unretriable:  # before any delete: Kueue must see the mark on the pods that remain
        await bounded(lambda name=name: kube.annotate_pod(job_ns, name, {c.KUEUE_RETRIABLE_ANNOTATION: "false"})
                      for name in the_plan.unretriable)
    if the_plan.release:
        await bounded(lambda name=name: kube.remove_pod_finalizer(job_ns, name, c.KUEUE_FINALIZER)
                      for name in the_plan.release)
    if the_plan.delete:
        await put_table()
        await write_status()
        await bounded(lambda name=name: kube.delete_pod(job_ns, name) for name in the_plan.delete)
        await create()
    else:
        await bounded([put_table, write_status, create])


def record_refusal(before: admission.Refusal | None, refused: Sequence[kube.Refused],
                   now: float) -> admission.Refusal | None:
    """The refusal to remember after a round of creations (None when every pod was admitted); a quota that
    keeps refusing keeps the time it first did."""
    if not refused:
        return None
    first = refused[0]
    quota = admission.Refusal(first.name, first.code, first.message, now)
    since = before.since if before is not None and before.quota == quota.quota else now
    return dataclasses.replace(quota, since=since)


async def create_pods(objs: Sequence[Obj]) -> list[kube.Refused]:
    """Create the pods, WRITES_IN_FLIGHT at a time; refusals are returned as data, other errors raised."""
    refused: list[kube.Refused] = []

    async def one(obj: Obj) -> None:
        try:
            await kube.create(obj)
        except kube.Refused as err:
            refused.append(err)

    await bounded(lambda obj=obj: one(obj) for obj in objs)
    return refused


async def reconcile(body: Mapping[str, Any], pods: Sequence[PodView], settings: Settings, mem: JobMemory,
                    now: float, emit: EventSink,
                    existing: Collection[tuple[str, str]] | None = None) -> Plan:
    """One pass over one job; returns the plan it carried out (its `next_due` says when to come back)."""
    meta = body.get("metadata") or {}
    prev = dict(mem.last_written if mem.last_written is not None else body.get("status") or {})
    generation = int(meta.get("generation") or 0)
    try:
        job = spec.parse(body, settings)
    except spec.InvalidSpec as err:
        out = Plan()
        _status_write(out, prev, status.invalid(prev, str(err), generation, now), mem, settings, now)
        await execute(body, out, prev, mem, now, emit)
        return out
    state = policy.state_from_status(prev)
    if state.reason == c.REASON_INVALID_SPEC and prev.get("observedGeneration") != generation:
        state, prev = policy.JobState(), {}  # the spec was fixed: start over
    pods = await podwarnings.fold(job.namespace, pods, mem.pod_warnings, now)  # issue 11: why a pod cannot start
    if job.from_job:  # issue 13: evaluate/export/fine-tune from a finished job's checkpoint
        job, problem = await _resolve_from(job, prev)
        if problem:
            out = Plan()
            new = (results.waiting_status(prev, str(problem), generation, now) if problem.waiting
                   else status.invalid(prev, str(problem), generation, now))
            _status_write(out, prev, new, mem, settings, now)
            await execute(body, out, prev, mem, now, emit)
            if problem.waiting:
                out.next_due = now + RESYNC_SECONDS / 10  # the source job's own events do not wake this one
            return out
    decision = policy.decide(job, state, pods, now)
    decision = admission.decide(job, state, pods, mem.refusal, now, decision) or decision
    active = decision.phase not in c.FINISHED_PHASES and decision.phase != c.SUSPENDED
    created = False
    if active and not decision.delete_job:
        created = await ensure_objects(job, objects_to_ensure(job, mem, existing), mem, emit)
    # Read tails before any pod goes away, so the last lines of every rank that ended stay in status.
    todo = tails_to_read(job, pods, mem, decision)
    if todo and not decision.delete_job:
        await read_tails(todo, job.namespace, mem, settings.log_tail_lines)
    out = plan(body, job, pods, settings, mem, prev, state, decision, now, created)
    await execute(body, out, prev, mem, now, emit)
    if active and mem.refusal is not None:  # refused just now: come back for it (admission.due)
        out.next_due = _earliest(out.next_due, admission.due(job, mem.refusal, now))
    return out
