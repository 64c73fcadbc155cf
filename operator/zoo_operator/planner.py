"""Stage 2 of a pass: `plan(observation, memory, settings) -> Plan`, a pure function (reconcile.py).

No I/O, no clock (the observation carries `now`), no randomness, and the memory is only read: what the pass
changes in it is part of the Plan (`Plan.memory`), like every object to create, delete or patch, every event,
the status write and the time the job next needs a pass. The executor (executor.py) is the only code that
writes; `zoo-operator render` (dryrun.py) is this planner run on an observation with no pods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from zoo_operator import (
    admission,
    faults,
    guards,
    limits,
    logparse,
    netpolicy,
    podwarnings,
    policy,
    ranktable,
    render,
    results,
    spec,
    status,
)
from zoo_operator import conditions as c
from zoo_operator.memory import (
    JobMemory,
    MemoryUpdate,
    Observation,
    PodLog,
    TableCache,
    rank0,
    read_tail,
    starting_status,
)
from zoo_operator.podview import PodView, parse_time
from zoo_operator.settings import Settings
from zoo_workloads import contract

# An active job gets a pass at least this often even when no event comes (a missed watch event heals).
RESYNC_SECONDS = 300.0
# A TTL that has passed while the job is not deleted yet (its deletion failed) is tried again after this long.
MIN_DELAY_SECONDS = 1.0
# A job waiting for its spec.from job is looked at again this often (the source's events do not wake it).
SOURCE_RECHECK_SECONDS = RESYNC_SECONDS / 10
# Issue 23: a running Ascend gang is looked at this often for NPU faults, which send the job no event (the device
# plugin's ConfigMap in kube-system is not watched). A lost node needs no poll: the node-lifecycle controller
# marks its pods Ready=False (MarkPodsNotReady) when the node turns Unknown, and every pod event brings a pass.
FAULT_CHECK_SECONDS = 10.0

Obj = dict[str, Any]
Event = tuple[str, str, str]  # (type Normal|Warning, reason, message)


@dataclasses.dataclass
class Plan:
    """Everything one pass writes; `executor.execute` carries it out in the order its doc gives."""

    status: dict[str, Any] | None = None  # the new status, when it is written now
    status_patch: dict[str, Any] | None = None
    urgent: bool = False
    ensure: list[Obj] = dataclasses.field(
        default_factory=list
    )  # Service, launch ConfigMap, PodGroup if missing
    created_event: Event | None = None  # posted when `ensure` created something for a job seen the first time
    config_map: Obj | None = None  # the rank-table ConfigMap, when its data changed
    delete: tuple[str, ...] = ()
    delete_uids: Mapping[str, str] = dataclasses.field(default_factory=dict)  # name -> UID seen (issue 24)
    # name -> UID of every pod of the job seen: annotations and finalizer removals touch only that pod (issue 24)
    pod_uids: Mapping[str, str] = dataclasses.field(default_factory=dict)
    force: tuple[str, ...] = ()  # pods of `delete` deleted without a grace period (issue 23: node lost)
    release: tuple[
        str, ...
    ] = ()  # deleted pods whose Kueue finalizer the operator removes (policy.kueue_release)
    unretriable: tuple[str, ...] = ()  # a finished job's Kueue pods to mark (policy.kueue_unretriable)
    create: list[Obj] = dataclasses.field(default_factory=list)
    delete_job: bool = False
    events: list[Event] = dataclasses.field(default_factory=list)
    follow: str | None = None  # the pod whose log to follow (rank 0, running)
    next_due: float | None = None  # unix time of the next pass this job needs, None when nothing is due
    active: bool = False  # the job is neither finished nor suspended (a refusal met now makes it due again)
    job: spec.JobSpec | None = None  # the parsed spec the plan was made for (None when it does not parse)
    memory: MemoryUpdate = dataclasses.field(default_factory=MemoryUpdate)
    previous: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the status the pass started from
    problems: tuple[str, ...] = ()  # inputs the pass could not use (a device annotation that does not parse)


def devices_of(
    job: spec.JobSpec, pods: Sequence[PodView], cache: Mapping[str, tuple[str, tuple[ranktable.Device, ...]]]
) -> tuple[list[ranktable.Device], dict[str, tuple[str, tuple[ranktable.Device, ...]]], list[str]]:
    """The devices of the current workers (from the static map, else from the device-plugin annotations), the
    annotation cache after parsing only annotations that are new (pod name -> (annotation, its devices: one per
    pod, a server pod's all perNode, none when it does not parse)), and one problem line per annotation that
    does not parse."""
    workers = {p.index: p for p in pods if p.role == c.ROLE_WORKER and not p.deleting and p.index is not None}
    if job.static_devices:
        return (
            [
                ranktable.Device(
                    render.worker_name(job, d.pod_index),
                    d.server_id,
                    d.device_id,
                    d.device_ip,
                    d.super_device_id,
                    workers[d.pod_index].ip if d.pod_index in workers else None,
                )
                for d in job.static_devices
            ],
            dict(cache),
            [],
        )

    def read(text: str, host_ip: str | None) -> tuple[ranktable.Device, ...]:
        if job.pods_per == contract.PODS_PER_SERVER:  # issue 21: a server pod is perNode ranks
            return tuple(ranktable.parse_server_annotation(text, host_ip))
        return (ranktable.parse_annotation(text, host_ip),)  # node IP if omitted

    after: dict[str, tuple[str, tuple[ranktable.Device, ...]]] = {}
    devices, problems = [], []
    for pod in workers.values():
        if not pod.device_annotation:
            continue
        key = f"{pod.device_annotation}@{pod.host_ip}"
        hit = cache.get(pod.name)
        if hit is not None and hit[0] == key:
            parsed = hit[1]
        else:
            try:
                parsed = read(pod.device_annotation, pod.host_ip)
            except ValueError as err:
                problems.append(f"pod {pod.name}: {err}")
                parsed = ()
        after[pod.name] = (key, parsed)
        devices += [dataclasses.replace(d, pod_name=pod.name, container_ip=pod.ip) for d in parsed]
    return devices, after, problems


def rank_table_inputs(pods: Sequence[PodView]) -> tuple[Any, ...]:
    """What the rank table depends on in the pods (their device annotations and IPs): a cheap change key."""
    return tuple(
        sorted(
            (p.name, p.index, p.device_annotation, p.ip, p.host_ip)
            for p in pods
            if p.role == c.ROLE_WORKER
            and not p.deleting
            and p.index is not None
            and (p.device_annotation or p.ip)
        )
    )


@dataclasses.dataclass(frozen=True)
class TablePlan:
    """The rank table's status, the ConfigMap to write (None when unchanged) and the caches after building."""

    info: status.RankTableInfo
    config_map: Obj | None
    cache: TableCache
    parsed: dict[str, tuple[str, tuple[ranktable.Device, ...]]] | None  # None: not rebuilt, cache unchanged
    problems: tuple[str, ...] = ()


def rank_table(
    job: spec.JobSpec, pods: Sequence[PodView], mem: JobMemory, active: bool, attempt: int = 0
) -> TablePlan:
    """The rank table of `attempt`. Only pods of that attempt count: on a gang restart the table goes back to
    initializing at once, marked with the new attempt, and never lists a device of the old gang. The table is
    rebuilt and serialised only when the device inputs changed since it was last built."""
    pods = [p for p in pods if p.attempt == attempt]
    inputs = (job.uid, job.replicas, job.rank_table_version, attempt, rank_table_inputs(pods))
    cache, parsed, problems = mem.table, None, list[str]()
    if inputs != cache.inputs or cache.built is None:
        devices, parsed, problems = devices_of(job, pods, mem.parsed_annotations)
        ordered = ranktable.order(devices)  # the table's rank order: its first device is rank 0
        cache = TableCache(
            inputs=inputs,
            built=ranktable.config_map_data(devices, job.replicas, job.rank_table_version, attempt),
            devices=len(devices),
            rank0=ordered[0].pod_name if ordered and len(devices) == job.replicas else "",
            ranks=tuple(ranktable.pod_ranks(devices, job.replicas).items()),
        )
    state = ranktable.COMPLETED if cache.devices == job.replicas else ranktable.INITIALIZING
    info = status.RankTableInfo(
        render.ranktable_config_map_name(job), job.rank_table_version, state, cache.devices
    )
    changed = active and cache.built != mem.rank_table_data
    return TablePlan(
        info, render.launch_config_map(job, cache.built) if changed else None, cache, parsed, tuple(problems)
    )


def objects_to_ensure(
    job: spec.JobSpec, mem: JobMemory, existing: Any, pod_group_served: bool | None, settings: Settings
) -> list[Obj]:
    """Service, launch ConfigMap, PodGroup and NetworkPolicy to create: the Service and ConfigMap that
    `existing` lacks (kind, name), or, when it is not known, all of them on the first pass for this job; the
    PodGroup (where its API is served) and the NetworkPolicy (issue 24, chart value networkPolicy.enabled) on the
    first pass for this job (they are not watched: the operator does not need them after creating them)."""
    first = mem.ensured_uid != job.uid
    group = [render.pod_group(job)] if job.gang and first and pod_group_served else []
    if settings.network_policy and first:
        group.append(netpolicy.network_policy(job, restrict_egress=settings.network_policy_restrict_egress))
    if render.dra_device_class(job) and first:
        # Issue 21: the worker pods' NPU claims come from it; created before them, not watched.
        group.append(render.resource_claim_template(job))
    if existing is None:
        if mem.ensured_uid == job.uid:
            return []
        return [render.service(job), render.launch_config_map(job, mem.rank_table_data), *group]
    out = []
    if ("Service", job.name) not in existing:
        out.append(render.service(job))
    if ("ConfigMap", render.launch_config_map_name(job)) not in existing:
        out.append(render.launch_config_map(job, mem.rank_table_data))
    return out + group


# Kinds the pods must wait for (issue 25): a gang's pods name their PodGroup, which the gang scheduler needs before
# it places any of them; the NetworkPolicy must hold before a container can start. The Service and the launch
# ConfigMap need not precede the pods: the kubelet does not start a container whose ConfigMap volume is missing
# (it retries the mount), DNS names appear when the Service does, and zoo-launch waits for a completed table
# of the pod's attempt (docs/contracts.md), so they go out in the same wave as the pods. A DRA
# ResourceClaimTemplate (issue 21, on main) is one the pods' claims are made from: it goes first too.
BEFORE_PODS = frozenset({"PodGroup", "NetworkPolicy", "ResourceClaimTemplate"})


def ensure_waves(ensure: Sequence[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(the objects to create before the pods, those created together with the pods), in plan order."""
    first = [o for o in ensure if o["kind"] in BEFORE_PODS]
    return first, [o for o in ensure if o["kind"] not in BEFORE_PODS]


def with_table(ensure: Sequence[Obj], table: Obj | None) -> list[Obj]:
    """`ensure` with its launch ConfigMap replaced by `table` (the rank-table ConfigMap this pass writes), so the
    ConfigMap is created holding the table, in one request, even when it is created together with the pods."""
    if table is None:
        return list(ensure)
    name = table["metadata"]["name"]
    return [table if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name else o for o in ensure]


# How long a pod this operator created may stay unseen in the pod index before it counts as gone and is created
# again (the index follows a watch, which lags the creates of a big gang by seconds). Kubernetes' own
# controllers wait the same way for their creations to be observed ("expectations", kube-controller-manager
# pkg/controller/controller_utils.go, ExpectationsTimeout 5 min); a pod deleted before it was ever seen is
# recreated after this.
EXPECT_SECONDS = 60.0


def expected_pods(
    expected: Mapping[str, float], pods: Sequence[PodView], create: Sequence[Obj], now: float
) -> dict[str, float]:
    """The pods created but not yet seen after this pass: those of `expected` the index still lacks, younger than
    EXPECT_SECONDS, plus the pods this pass creates (issue 25: without it every pass that runs before the index
    caught up asks the apiserver for each unseen pod again, and gets 409)."""
    seen = {p.name for p in pods}
    out = {n: t for n, t in expected.items() if n not in seen and now - t < EXPECT_SECONDS}
    out.update((o["metadata"]["name"], now) for o in create)
    return out


def next_due(
    job: spec.JobSpec,
    decision: policy.Decision,
    pods: Sequence[PodView],
    new: Mapping[str, Any],
    attempt: int,
    deferred: float | None,
    now: float,
) -> float | None:
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
    waiting = [
        p.waiting_since
        for p in pods
        if p.waiting_since is not None and not (p.running or p.terminated or p.deleting or p.queued)
    ]
    if waiting:
        times.append(min(waiting) + limit)
    if any(podwarnings.needs_look(p, now) for p in pods):  # issue 11: re-read why a pod does not start
        times.append(now + podwarnings.START_WARNING_REREAD_SECONDS)
    elif any(
        p.node and p.created is not None and not (p.running or p.terminated or p.deleting) for p in pods
    ):
        times.append(
            min(p.created for p in pods if p.created is not None) + podwarnings.START_WARNING_AFTER_SECONDS
        )
    # A time that has passed was this pass's to act on: it never makes the job due at once again (no spin).
    future = [t for t in times if t > now]
    return min(future) if future else None


def earliest(a: float | None, b: float | None) -> float | None:
    """The earlier of two due times (None = not due)."""
    return b if a is None else a if b is None else min(a, b)


def status_write(
    out: Plan, prev: Mapping[str, Any], new: dict[str, Any], mem: JobMemory, settings: Settings, now: float
) -> float | None:
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
        if new.get("reason") in (c.REASON_OBJECT_NOT_OWNED, c.REASON_QUEUE_NOT_FOUND):  # issue 24: waits
            kind = "Warning"
        if new.get("reason") in c.FAULT_REASONS:  # issue 23: a rank replaced alone keeps the job Running
            kind = "Warning"
        out.events.append((kind, str(new.get("reason") or new.get("phase")), str(new.get("message") or "")))
    return None


def final_record(
    job: spec.JobSpec, pods: Sequence[PodView], logs: Mapping[str, PodLog], first: str
) -> dict[str, Any] | None:
    """The final record (termination message or `done` event; results.in_user_terms makes it status.result):
    rank 0's termination message first, then any rank's, then the logs' done event."""
    ordered = sorted((p for p in pods if p.exit_code == 0), key=lambda p: p.name != first)
    for pod in ordered:
        term = logparse.parse_termination(pod.termination_message)
        if term and term["status"] == "succeeded":
            return term
    entry = logs.get(first)
    return entry.result if entry else None


def _source(
    job: spec.JobSpec, obs: Observation, prev: Mapping[str, Any]
) -> tuple[spec.JobSpec, results.SourceError | None]:
    """spec.from against the named job as observed; afterwards status.source holds it (issue 13)."""
    kept = results.Source.from_status(prev.get("source"))
    if kept is not None:
        return dataclasses.replace(job, source=kept), None
    if not obs.source_read:  # a finished job without status.source, or nothing named
        return job, None
    try:
        return dataclasses.replace(job, source=results.resolve_source(job, obs.source)), None
    except results.SourceError as err:
        return job, err


def plan(obs: Observation, mem: JobMemory, settings: Settings) -> Plan:
    """What this pass writes, from what it observed and what the operator remembers (pure)."""
    body, now = obs.body, obs.now
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    try:
        job = spec.parse(body, settings)
    except spec.InvalidSpec as err:
        prev = starting_status(body, mem, valid=False)
        out = Plan(previous=prev)
        invalid = {
            **status.invalid(prev, str(err), generation, now),
            "model": spec.display_model(body.get("spec") or {}),
        }
        status_write(out, prev, invalid, mem, settings, now)
        return out
    prev = starting_status(body, mem, valid=True)
    warnings = MemoryUpdate(pod_warnings=obs.pod_warnings)
    if job.from_job:  # issue 13: evaluate/export/fine-tune from a finished job's checkpoint
        job, problem = _source(job, obs, prev)
        if problem:
            out = Plan(memory=warnings, previous=prev)
            new = (
                results.waiting_status(prev, str(problem), generation, now)
                if problem.waiting
                else status.invalid(prev, str(problem), generation, now)
            )
            status_write(out, prev, new, mem, settings, now)
            if problem.waiting:
                out.next_due = now + SOURCE_RECHECK_SECONDS
            return out
    pods = obs.pods
    state, decision = admission.decide_pass(job, prev, pods, mem.refusal, now)
    return _plan_job(obs, job, pods, mem, settings, prev, state, decision, generation, warnings)


def _plan_job(
    obs: Observation,
    job: spec.JobSpec,
    pods: Sequence[PodView],
    mem: JobMemory,
    settings: Settings,
    prev: Mapping[str, Any],
    state: policy.JobState,
    decision: policy.Decision,
    generation: int,
    warnings: MemoryUpdate,
) -> Plan:
    """The plan of a job whose spec is valid and whose source (if any) is resolved."""
    now = obs.now
    # issue 15: Kueue holds the deleted pods of a preempted group until replaced; ours reuse their names.
    out = Plan(
        delete=decision.delete,
        delete_uids={p.name: p.uid for p in pods if p.name in decision.delete and p.uid},
        pod_uids={p.name: p.uid for p in pods if p.uid},
        force=decision.force,
        release=policy.kueue_release(pods),
        unretriable=policy.kueue_unretriable(decision.phase, pods),
        memory=warnings,
        job=job,
        previous=prev,
    )
    if decision.delete_job:
        out.events.append(
            (
                "Normal",
                c.REASON_TTL_EXPIRED,
                "spec.runPolicy.ttlSecondsAfterFinished passed: deleting the job",
            )
        )
        out.delete_job = True
        return out
    active = out.active = decision.phase not in c.FINISHED_PHASES and decision.phase != c.SUSPENDED
    logs = dict(mem.logs)
    read = {
        name: read_tail(logs.get(name), tail.uid, tail.text, settings.log_tail_lines, tail.terminated)
        for name, tail in obs.tails.items()
    }
    logs.update(read)
    pod_group_error = mem.pod_group_error
    if job.gang and obs.pod_group_served is not None:
        pod_group_error = (
            None
            if obs.pod_group_served
            else (
                f"{render.pod_group(job)['apiVersion']} PodGroup is not served by this cluster; "
                f"{render.gang_missing_hint(job)}"
            )
        )
        if pod_group_error:
            out.events.append(("Warning", c.REASON_VOLCANO_MISSING, pod_group_error))
    if active:
        out.ensure = objects_to_ensure(job, mem, obs.existing, obs.pod_group_served, settings)
        if out.ensure and mem.ensured_uid != job.uid:
            made = f"created Service {job.name} and ConfigMap {render.launch_config_map_name(job)}"
            out.created_event = ("Normal", c.REASON_JOB_CREATED, f"{made}; creating the pods")
    # Issue 24 (guards.py): a name held by another owner's object stops every write by name until it is gone.
    not_owned = guards.foreign(job.uid, obs.owners) if active else []
    if not_owned:
        out.ensure, out.created_event = [], None
    elif obs.owners:  # read to be the job's own already (an operator restart): nothing to create, no 409
        out.ensure = [o for o in out.ensure if obs.owners.get((o["kind"], o["metadata"]["name"])) != job.uid]
    attempt = state.restarts + (1 if decision.restart else 0)
    table = None
    table_cache: TableCache | None = None
    parsed = None
    if job.launch == "ranktable":
        tp = rank_table(job, pods, mem, active, attempt)
        table, out.config_map, table_cache, parsed = tp.info, tp.config_map, tp.cache, tp.parsed
        out.problems = tp.problems
        if not_owned:  # never patch a rank-table ConfigMap of someone else
            out.config_map = None
        out.ensure = with_table(out.ensure, out.config_map)  # issue 25: created holding this pass's table
        if out.config_map is not None and table.status == ranktable.COMPLETED:
            out.events.append(
                ("Normal", c.REASON_RANK_TABLE_COMPLETED, f"rank table of {job.replicas} devices completed")
            )
    first = rank0(job, pods, logs, table_cache.rank0 if table_cache is not None else mem.table.rank0)
    entry = logs.get(first)
    lines = {name: e.lines for name, e in logs.items()}
    created = bool(out.ensure)
    was_created = (
        created or any(x.get("type") == c.CREATED for x in prev.get("conditions") or []) or bool(pods)
    )
    new = status.compute(
        prev=prev,
        state=state,
        decision=decision,
        pods=pods,
        replicas=job.replicas,
        generation=generation,
        now=now,
        rank_table=table,
        progress=(entry.progress if entry else prev.get("progress") or {}),
        lines=lines,
        result=results.in_user_terms(final_record(job, pods, logs, first), job) or prev.get("result"),
        created=was_created,
        history=entry.history if entry else None,
        ranks_per_pod=job.devices_per_pod,
        logged_ranks={name: e.rank for name, e in logs.items() if e.rank is not None},
        table_ranks=dict((table_cache or mem.table).ranks) if table is not None else None,
    )  # console: status.history (issue 12)
    new["model"] = spec.display_model(
        obs.body.get("spec") or {}
    )  # the MODEL column: a built-in or custom:<script>
    out.events.extend(decision.events)  # issue 11: e.g. SpecChangeIgnored on a finished job
    if decision.faults or prev.get("faults"):  # issue 23: every fault the job met, kept across restarts
        new["faults"] = faults.record(prev.get("faults"), decision.faults, state.restarts, now)
    # issue 13: what the job was built from, and a warning when its checkpoints die with its pods.
    if job.source is not None:
        new["source"] = job.source.status()
    ephemeral = results.ephemeral_checkpoints(job)
    if ephemeral and not any(x.get("type") == c.CHECKPOINTS_EPHEMERAL for x in new["conditions"]):
        out.events.append(("Warning", c.REASON_EPHEMERAL_VOLUME, ephemeral))
    if ephemeral:
        new["conditions"] = status.set_condition(
            new["conditions"], c.CHECKPOINTS_EPHEMERAL, True, c.REASON_EPHEMERAL_VOLUME, ephemeral, now
        )
    # Checkpoints (issue 15): status.lastCheckpoint/resumes from rank 0; an Event per resume and skipped file.
    new = status.with_checkpoints(new, prev, entry.checkpoints if entry else {})
    invalid = {name: e.checkpoints.get("invalid") or [] for name, e in logs.items()}
    announced = set(mem.announced)
    for key, kind, reason, message in status.checkpoint_notices(prev, new, invalid):
        if key not in announced:
            announced.add(key)
            out.events.append((kind, reason, message))
    if job.gang:
        ok = pod_group_error is None
        new["conditions"] = status.set_condition(
            new["conditions"],
            c.POD_GROUP_READY,
            ok,
            c.REASON_POD_GROUP_CREATED if ok else c.REASON_VOLCANO_MISSING,
            "Volcano PodGroup created" if ok else str(pod_group_error),
            now,
        )
    refusal = mem.refusal
    if refusal is not None and refusal.quota and decision.phase not in c.FINISHED_PHASES:
        new["conditions"] = status.set_condition(
            new["conditions"], c.PODS_ADMITTED, False, c.REASON_QUOTA_EXCEEDED, admission.quote(refusal), now
        )
    elif refusal is None and any(x.get("type") == c.PODS_ADMITTED for x in new["conditions"]):
        new["conditions"] = status.set_condition(
            new["conditions"],
            c.PODS_ADMITTED,
            True,
            c.REASON_PODS_ADMITTED,
            "the apiserver admitted the pods",
            now,
        )
    queue_missing = obs.local_queue is False and active and job.queue is not None
    new["conditions"], notices = _guard_conditions(job, obs, prev, new["conditions"], not_owned, now)
    if notices and new.get("phase") == c.PENDING:  # what the job waits for is its status reason too
        new["reason"], new["message"] = notices[0][1:]
    out.events.extend(
        ("Warning", reason, message)
        for fresh, reason, message in notices
        if fresh and not (reason == new.get("reason") and status.is_transition(prev, new))
    )  # (a transition's Event is posted by status_write)
    new = limits.bound_status(
        new
    )  # issue 11: a status the apiserver always accepts, whatever logs and messages
    deferred = status_write(out, prev, new, mem, settings, now)
    pending = expected_pods(mem.expected, pods, (), obs.now)  # created earlier, not in the index yet
    avoided = faults.avoided_nodes(new.get("faults"))  # issue 23: keep off the nodes that were lost
    out.create = [
        faults.avoid_nodes(render.pod(job, index, attempt), avoided)
        for index in decision.create
        if render.pod_name(job, index) not in pending
    ]
    if not_owned or queue_missing:  # issue 24: the job waits (guards.py), its pods are created afterwards
        out.create = []
    expected = expected_pods(mem.expected, pods, out.create, obs.now)
    if active and first not in decision.delete:
        running = next((p for p in pods if p.name == first and p.running and not p.terminated), None)
        out.follow = running.name if running is not None else None
    out.next_due = next_due(job, decision, pods, new, attempt, deferred, now)
    if active:
        out.next_due = earliest(out.next_due, admission.due(job, refusal, now))
    if decision.phase == c.RUNNING and job.device_type == "Ascend910":  # issue 23: NPU faults send no event
        out.next_due = earliest(out.next_due, now + FAULT_CHECK_SECONDS)
    if not_owned or queue_missing:  # what it waits for sends no event: look again (guards.RECHECK_SECONDS)
        out.next_due = earliest(out.next_due, now + guards.RECHECK_SECONDS)
    out.memory = dataclasses.replace(
        warnings,
        logs=read,
        table=table_cache,
        parsed_annotations=parsed,
        announced=frozenset(announced) if announced != mem.announced else None,
        ensured_uid=job.uid if active and not not_owned else None,
        pod_group_error=(pod_group_error,) if obs.pod_group_served is not None else None,
        taken=_taken(mem.taken, job.uid, obs.owners),
        expected=expected if expected != mem.expected else None,
    )
    return out


def _taken(
    taken: frozenset[tuple[str, str]], job_uid: str, owners: guards.Owners | None
) -> frozenset[tuple[str, str]] | None:
    """The memory's 409-answered names after this pass (None: unchanged)."""
    after = guards.still_taken(taken, job_uid, owners)
    return None if after == taken else after


def _guard_conditions(
    job: spec.JobSpec,
    obs: Observation,
    prev: Mapping[str, Any],
    conds: list[dict[str, Any]],
    not_owned: list[tuple[str, str]],
    now: float,
) -> tuple[list[dict[str, Any]], list[tuple[bool, str, str]]]:
    """Conditions ObjectsOwned and QueueFound (guards.py) set from this pass's reads, and (fresh, reason,
    message) of each that is False: fresh when it turned False or its message changed (a Warning Event)."""
    before = {str(x.get("type")): x for x in prev.get("conditions") or []}
    owned = guards.owned_condition(job.namespace, not_owned, c.OBJECTS_OWNED in before)
    wanted = [
        (c.OBJECTS_OWNED, owned if obs.owners is not None else None),  # only what was read this pass counts
        (
            c.QUEUE_FOUND,
            guards.queue_condition(job.namespace, job.queue, obs.local_queue, c.QUEUE_FOUND in before),
        ),
    ]
    notices = []
    for ctype, cond in wanted:
        if cond is None:
            continue
        ok, reason, message = cond
        old = before.get(ctype) or {}
        if not ok:
            notices.append((old.get("status") != "False" or old.get("message") != message, reason, message))
        conds = status.set_condition(conds, ctype, ok, reason, message, now)
    return conds, notices
