"""Run-policy decisions: given the job, its last status and its pods, what should happen now.

Pure: plain data in, a `Decision` out. The reconciler carries the decision out (creates, deletes, writes status).
Order of precedence: finished jobs only clean up; suspend; permanent failures; hardware faults (a lost node, a
faulty NPU: faults.py, the affected ranks or the whole gang moved, not counted); retryable failures (whole-gang
restart within backoffLimit); success; activeDeadlineSeconds; scheduling / image-pull timeouts; then creating
whatever pods are missing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from zoo_operator import conditions as c
from zoo_operator import faults, logparse, render
from zoo_operator.podview import PodView, parse_time
from zoo_operator.spec import JobSpec, gang_hash
from zoo_workloads import contract

# Longest piece of a rank's termination message quoted in status.message.
MESSAGE_CHARS = 300
# Whole-gang restarts wait 10 s, 20 s, 40 s ... (at most 5 min) before recreating pods, so a rank that fails at
# once does not turn into a tight loop against the scheduler and the apiserver.
RESTART_BACKOFF_SECONDS = 10.0
RESTART_BACKOFF_MAX_SECONDS = 300.0


def restart_backoff(restarts: int) -> float:
    """Seconds to wait before recreating the pods of restart number `restarts` (1-based)."""
    if restarts <= 0:
        return 0.0
    return min(RESTART_BACKOFF_SECONDS * 2.0 ** (restarts - 1), RESTART_BACKOFF_MAX_SECONDS)


@dataclasses.dataclass(frozen=True)
class JobState:
    """What the operator recorded in status last time."""

    phase: str | None = None
    reason: str | None = None
    message: str | None = None
    restarts: int = 0
    start_time: float | None = None
    completion_time: float | None = None
    restart_time: float | None = None
    stopped_restarts: int = 0  # restarts after graceful stops: not counted against backoffLimit
    observed_generation: int | None = None


def state_from_status(status: Mapping[str, Any] | None) -> JobState:
    """JobState from a status dict (missing or malformed fields fall back to defaults)."""
    status = status or {}
    restarts = status.get("restarts")
    stopped = status.get("stoppedRestarts")
    return JobState(
        phase=status.get("phase"),
        reason=status.get("reason"),
        message=status.get("message"),
        restarts=restarts if isinstance(restarts, int) and restarts >= 0 else 0,
        start_time=parse_time(status.get("startTime")),
        completion_time=parse_time(status.get("completionTime")),
        restart_time=parse_time(status.get("restartTime")),
        stopped_restarts=stopped if isinstance(stopped, int) and stopped >= 0 else 0,
        observed_generation=status.get("observedGeneration")
        if isinstance(status.get("observedGeneration"), int)
        else None,
    )


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do now. `create` holds worker indexes (None = the scheduler pod); `delete` holds pod names."""

    phase: str
    reason: str
    message: str
    create: tuple[int | None, ...] = ()
    delete: tuple[str, ...] = ()
    restart: bool = False
    delete_job: bool = False
    stopped: bool = False  # the restart follows a graceful stop (exit 79) and is not counted
    # Events to post besides the phase's own: (type Normal|Warning, reason, message).
    events: tuple[tuple[str, str, str], ...] = ()
    # Issue 23: pods of `delete` deleted without a grace period (their node is lost), and the faults detected.
    force: tuple[str, ...] = ()
    faults: tuple[faults.Fault, ...] = ()


def pods_to_clean(policy: str, pods: Sequence[PodView]) -> tuple[str, ...]:
    """Pods to delete once the job has finished: All, the still Running ones, or None."""
    live = [p for p in pods if not p.deleting]
    if policy == "All":
        return tuple(p.name for p in live)
    if policy == "Running":
        return tuple(p.name for p in live if not p.terminated)
    return ()


def in_user_terms(job: JobSpec, text: str) -> str:
    """text with the pod's paths and volume names told in the user's terms: `/zoo/data/validation` becomes
    `spec.dataset.evalPath: validation (/zoo/data/validation in the pod)`, `volume "zoo-data"` names
    spec.dataset.volume."""
    terms: dict[str, str] = {}
    for field, root, value in (
        ("spec.dataset.trainPath", c.DATA_DIR, job.train_path),
        ("spec.dataset.evalPath", c.DATA_DIR, job.eval_path),
        ("spec.checkpoint.resumeFrom", c.CHECKPOINT_DIR, job.resume_from),
        ("spec.checkpoint.path", c.CHECKPOINT_DIR, job.checkpoint_path),
    ):
        if value:
            terms.setdefault(f"{root}/{value}", f"{field}: {value}")
    volumes = {"zoo-data": "spec.dataset.volume", "zoo-checkpoint": "spec.checkpoint.volume"}
    for name, field in volumes.items():
        terms[f'volume "{name}"'] = f'volume "{name}" ({field})'
        terms[f"volume {name}"] = f"volume {name} ({field})"
    if not terms:
        return text
    keys = sorted(terms, key=len, reverse=True)
    # A path matches whole (or as a prefix of a deeper path), never as part of a longer name.
    pattern = re.compile("(" + "|".join(re.escape(k) for k in keys) + r")((?:/[^\s'\",;)]*)?)(?![\w.-])")

    def swap(match: re.Match[str]) -> str:
        key, rest = match.group(1), match.group(2)
        if key.startswith("volume"):
            return terms[key] + rest
        inside = f" (+ {rest})" if rest else ""
        return f"{terms[key]}{inside} ({key}{rest} in the pod)"

    return pattern.sub(swap, text)


def start_problem(pod: PodView) -> str | None:
    """Why a scheduled pod's container cannot start (waiting reason and message, or the kubelet's Warning Event
    folded into waiting_message), or None when it is just starting."""
    if pod.terminated or pod.running or pod.node is None:
        return None
    reason = pod.waiting_reason or ""
    if reason in c.START_PROBLEM_REASONS or reason in c.IMAGE_PULL_REASONS or pod.waiting_message:
        return ": ".join(x for x in (reason, pod.waiting_message or "") if x)
    return None


def _describe_exit(pod: PodView) -> str:
    term = logparse.parse_termination(pod.termination_message)
    detail = ""
    if term and term.get("status") == "failed":
        text = str(term.get("message", ""))
        text = text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."
        detail = f": {term.get('reason', 'Error')}: {text}".rstrip(": ")
    elif pod.terminated_reason:
        detail = f" ({pod.terminated_reason})"
    code = "without an exit code" if pod.exit_code is None else f"with exit code {pod.exit_code}"
    return f"pod {pod.name} failed {code}{detail}"


def kueue_release(pods: Sequence[PodView]) -> tuple[str, ...]:
    """Pods whose Kueue finalizer the operator removes: deleted (by Kueue's preemption or by us) and ended. Kueue
    keeps it on a pod group's inactive pods until replacements exist (pod_controller.go FindMatchingWorkloads:
    only inactive pods beyond the group's count are finalized); a rank's replacement has the same name, so it
    can only be created once the old pod is gone."""
    return tuple(p.name for p in pods if p.deleting and p.kueue_finalizer and (p.terminated or not p.node))


def kueue_unretriable(phase: str, pods: Sequence[PodView]) -> tuple[str, ...]:
    """Pods of a finished job to mark unretriable for Kueue (c.KUEUE_RETRIABLE_ANNOTATION), so that its pod group
    finishes and frees the quota even though cleanPodPolicy deletes pods that never succeed."""
    if phase not in c.FINISHED_PHASES:
        return ()
    return tuple(p.name for p in pods if p.kueue_finalizer and not p.kueue_unretriable)


def _finished(job: JobSpec, state: JobState, pods: Sequence[PodView], now: float) -> Decision:
    ttl = job.ttl_seconds_after_finished
    expired = ttl is not None and state.completion_time is not None and now >= state.completion_time + ttl
    events: tuple[tuple[str, str, str], ...] = ()
    seen = state.observed_generation
    if seen is not None and job.generation > seen and state.reason != c.REASON_INVALID_SPEC:
        # Issue 11: the spec of a finished job now disagrees with what ran; say so once (observedGeneration moves).
        text = (
            f"spec changed (generation {seen} -> {job.generation}) after the job {str(state.phase).lower()}: "
            "not acted on; create a new ZooTrainingJob to train again"
        )
        events = (("Warning", c.REASON_SPEC_CHANGE_IGNORED, text),)
    return Decision(
        str(state.phase),
        state.reason or "",
        state.message or "",
        delete=pods_to_clean(job.clean_pod_policy, pods),
        delete_job=expired,
        events=events,
    )


def _timeouts(job: JobSpec, pods: Sequence[PodView], now: float) -> Decision | None:
    limit = job.scheduling_timeout_seconds
    for pod in pods:
        since = pod.waiting_since
        if pod.terminated or pod.running or since is None or pod.queued:
            continue  # a queued pod (gated, or a Volcano gang not admitted yet) waits for admission
        waited = int(now - since)
        if waited < limit:
            continue
        if pod.waiting_reason in c.IMAGE_PULL_REASONS:
            return Decision(
                c.FAILED,
                c.REASON_IMAGE_PULL,
                f"pod {pod.name}: {pod.waiting_reason} for {waited}s "
                f"(spec.runPolicy.schedulingTimeoutSeconds={limit}): {pod.waiting_message or ''}".rstrip(
                    ": "
                ),
            )
        if pod.node is None:
            why = pod.unschedulable or "not scheduled"
            return Decision(
                c.FAILED,
                c.REASON_SCHEDULING_TIMEOUT,
                f"pod {pod.name} not scheduled after {waited}s "
                f"(spec.runPolicy.schedulingTimeoutSeconds={limit}): {why}",
            )
        # Scheduled but never started (a volume that cannot mount, a missing Secret, ContainerCreating forever).
        why = start_problem(pod) or pod.waiting_reason or "ContainerCreating"
        return Decision(
            c.FAILED,
            c.REASON_POD_START_FAILED,
            in_user_terms(
                job,
                f"pod {pod.name} did not start in {waited}s "
                f"(spec.runPolicy.schedulingTimeoutSeconds={limit}): {why}",
            ),
        )
    return None


def _spec_changed(job: JobSpec, state: JobState, live: Sequence[PodView]) -> Decision | None:
    """Pods made from other gang-defining fields (spec.GANG_FIELDS): delete them all, then start the new spec.

    A deliberate whole-gang restart with its own reason (SpecChanged, a Warning Event): it does not count against
    backoffLimit. Pods without the annotation (made by an older operator) are left alone.
    """
    current = gang_hash(job)
    stale = [p for p in live if p.spec_hash and p.spec_hash != current]
    if not stale:
        return None
    seen = (
        ""
        if state.observed_generation is None
        else f" (generation {state.observed_generation} -> {job.generation})"
    )
    return Decision(
        c.RESTARTING,
        c.REASON_SPEC_CHANGED,
        f"spec changed{seen} while the gang ran: restarting all {len(live)} pods with the new spec "
        "(a running gang never gets a pod added or replaced)",
        delete=tuple(p.name for p in live),
    )


def _pod_lost(
    job: JobSpec,
    state: JobState,
    current: Sequence[PodView],
    wanted: Sequence[int | None],
    live: Sequence[PodView],
) -> Decision | None:
    """A pod of a running gang that is gone (deleted by someone): the whole gang restarts, never one rank."""
    if state.phase != c.RUNNING or not current:
        # Nothing of the gang is left (e.g. Kueue preempted it by deleting every pod): the gang is recreated
        # whole once the names are free, which is never a pod added to a running gang and costs no restart.
        return None
    present = {p.index if p.role == c.ROLE_WORKER else None for p in current}
    missing = [i for i in wanted if i not in present]
    if not missing:
        return None
    name = render.scheduler_name(job) if missing[0] is None else render.worker_name(job, missing[0])
    return _restart_or_fail(
        job, state, c.REASON_POD_LOST, f"pod {name} of the running gang is gone (deleted or evicted)", live
    )


def process_restarts(job: JobSpec) -> int:
    """The in-place restarts each pod's zoo-launch allows (spec.runPolicy.processRestarts, else its default)."""
    return contract.DEFAULT_PROCESS_RESTARTS if job.process_restarts is None else job.process_restarts


def gang_finishing(current: Sequence[PodView]) -> bool:
    """A pod of the current attempt ended well (a rank done, or the scheduler gone because every rank finished):
    the gang is at its end, and a replacement rank would wait for peers and a scheduler that left (found in
    benchmarks/recovery.py: an NPU fault after rank 0 had finished kept the job Running for ever). Pod-level
    recovery is off then; the whole gang restarts from its checkpoint instead."""
    return any(p.terminated and not p.failed for p in current)


def alone_possible(job: JobSpec, state: JobState, current: Sequence[PodView]) -> bool:
    """Whether one rank's pod can be recreated while the rest of the gang stays (replace_lost_pod,
    replace_faulty_ranks): a running dynamic launch whose zoo-launch supervisors restart processes in place
    (processRestarts > 0) on the gang channel, one process per pod (zoo-server-launch restarts nothing in place
    and is on no channel), the gang not finishing."""
    if job.launch != "dynamic" or state.phase != c.RUNNING or not current or process_restarts(job) == 0:
        return False
    return job.pods_per != contract.PODS_PER_SERVER and not gang_finishing(current)


def replace_lost_pod(
    job: JobSpec,
    state: JobState,
    current: Sequence[PodView],
    wanted: Sequence[int | None],
    pods: Sequence[PodView],
) -> Decision | None:
    """Issue 23, pod-level recovery: a lost worker pod of a running dynamic-launch gang is recreated alone, under
    the same attempt, when zoo-launch restarts processes in place (processRestarts > 0). Its peers' supervisors
    hear it fall silent on the gang channel (zoo_workloads.gangchannel) and restart their processes from the
    newest step checkpoint; the replacement registers with the same scheduler under the same MS_NODE_ID. Not
    counted against backoffLimit: the job did not fail.

    Otherwise None and _pod_lost restarts the whole gang: the scheduler pod (a new pod gets a new IP, and every
    zoo-launch resolved MS_SCHED_HOST once; it is also the channel's hub); a rank-table launch (a new pod IP
    changes hccl.json, which the survivors would read 60-90 s late through the ConfigMap volume, and HCCL has
    no re-join of one rank); in-place restarts off (nobody would restart the survivors' processes).
    """
    if not alone_possible(job, state, current):
        return None
    present = {p.index if p.role == c.ROLE_WORKER else None for p in current}
    missing = [i for i in wanted if i not in present]
    lost = [i for i in missing if i is not None]
    if not missing or len(lost) < len(missing):
        return None
    names = [render.worker_name(job, i) for i in lost]
    taken = {p.name for p in pods}
    # A name still held by the terminating pod: the next pass (its deletion is an event) creates it.
    create = tuple(i for i, name in zip(lost, names, strict=True) if name not in taken)
    return Decision(
        c.RUNNING,
        c.REASON_POD_REPLACED,
        f"pod {', '.join(names)} of the running gang is gone (deleted or evicted): recreating only it; the "
        "other ranks restart in place from the newest step checkpoint (not counted against "
        "spec.runPolicy.backoffLimit)",
        create=create,
    )


def replace_faulty_ranks(
    job: JobSpec, state: JobState, found: Sequence[faults.Fault], current: Sequence[PodView]
) -> Decision | None:
    """Issue 23, pod-level recovery from a hardware fault: the worker pods on a lost node or a faulty NPU are
    deleted alone (without a grace period on a node that is not Ready, faults.to_force) and the next pass
    recreates them under the same attempt (replace_lost_pod), kept off a lost node (faults.avoided_nodes: a
    node affinity NotIn) or, for an NPU fault, given another NPU (the device plugin no longer offers the faulty
    one). The other ranks keep their pods and restart their processes in place from the newest step
    checkpoint, as for any lost pod. Not counted against backoffLimit: the fault is the hardware's.

    Only where replace_lost_pod would recreate the pod alone (alone_possible); otherwise None and fault_restart
    moves the whole gang: a faulty scheduler pod (the survivors resolved its IP once), a rank-table launch (the
    new pod's IP or device changes hccl.json under ranks that HCCL cannot re-join one by one), server pods."""
    if not found or not alone_possible(job, state, current):
        return None
    names = {f.pod for f in found}
    faulty = [p for p in current if p.name in names]
    if len(faulty) < len(names) or any(p.role != c.ROLE_WORKER for p in faulty):
        return None
    ordered = sorted(faulty, key=lambda p: p.index if p.index is not None else -1)
    return Decision(
        c.RUNNING,
        found[0].reason,
        f"{faults.summary(found)}; recreating only pod {', '.join(p.name for p in ordered)} away from it; the "
        "other ranks restart in place from the newest step checkpoint (a fault of the hardware: not counted "
        "against spec.runPolicy.backoffLimit)",
        delete=tuple(p.name for p in ordered),
        force=faults.to_force(ordered),
        faults=tuple(found),
    )


def _evicted(pods: Sequence[PodView], attempt: int, live: Sequence[PodView]) -> Decision | None:
    """A pod of the current attempt stopped from outside (Kueue evicts a whole pod group one pod at a time; a
    drain or the scheduler's preemption takes one): the whole gang stops and restarts from its checkpoint, which
    is not the job's failure (not counted against backoffLimit). Under Kueue the new pods wait gated until the
    workload is admitted again."""
    pod = next((p for p in pods if p.evicted_by and p.attempt >= attempt), None)
    if pod is None:
        return None
    return Decision(
        c.RESTARTING,
        c.REASON_EVICTED,
        f"pod {pod.name} evicted ({pod.evicted_by}); restarting all ranks from the checkpoint once "
        "admitted again (not counted against spec.runPolicy.backoffLimit)",
        delete=tuple(p.name for p in live),
        restart=True,
        stopped=True,
    )


def fault_restart(found: Sequence[faults.Fault], live: Sequence[PodView]) -> Decision:
    """Issue 23: ranks on a lost node or a faulty NPU restart away from it, not counted against backoffLimit
    (the fault is the hardware's, not the job's). The whole gang, where replace_faulty_ranks cannot move only
    `found`'s pods (a rank-table launch, the scheduler pod, server pods, in-place restarts off). The pods on a
    node that is not Ready go without a grace period (faults.to_force); the new pods keep off a faulty node
    (faults.avoided_nodes) and the device plugin no longer offers a faulty NPU."""
    return Decision(
        c.RESTARTING,
        found[0].reason,
        f"{faults.summary(found)}; restarting all ranks away from it from the checkpoint (a fault of the "
        "hardware: not counted against spec.runPolicy.backoffLimit)",
        delete=tuple(p.name for p in live),
        restart=True,
        stopped=True,
        force=faults.to_force(live),
        faults=tuple(found),
    )


def _restart_or_fail(
    job: JobSpec, state: JobState, reason: str, detail: str, live: Sequence[PodView]
) -> Decision:
    """A whole-gang restart counted against backoffLimit (graceful-stop restarts are not), or Failed when none
    is left."""
    counted = state.restarts - state.stopped_restarts
    if counted < job.backoff_limit:
        return Decision(
            c.RESTARTING,
            reason,
            f"{detail}; restarting all ranks (restart {counted + 1} of {job.backoff_limit})",
            delete=tuple(p.name for p in live),
            restart=True,
        )
    return Decision(
        c.FAILED,
        c.REASON_BACKOFF_LIMIT,
        f"{detail}; no restarts left (spec.runPolicy.backoffLimit={job.backoff_limit})",
    )


def decide(job: JobSpec, state: JobState, pods: Sequence[PodView], now: float) -> Decision:
    """The next step for a valid job."""
    if state.phase in c.FINISHED_PHASES:
        return _finished(job, state, pods, now)
    live = [p for p in pods if not p.deleting]
    if job.suspend:
        return Decision(
            c.SUSPENDED,
            c.REASON_SUSPENDED,
            "spec.runPolicy.suspend is true: pods deleted, status kept",
            delete=tuple(p.name for p in live),
        )
    attempt = state.restarts
    wanted: list[int | None] = ([None] if job.launch == "dynamic" else []) + list(range(job.workers))
    changed = _spec_changed(job, state, live)
    if changed is not None:
        return changed
    # Linear in the pod count: membership tests below are on sets and ranges, never on lists.
    current = [
        p
        for p in live
        if p.attempt >= attempt
        and (p.role != c.ROLE_WORKER or (p.index is not None and 0 <= p.index < job.workers))
    ]
    # Pods of an older attempt, and workers beyond spec.replicas, are never reused.
    kept = {p.name for p in current}
    extra = tuple(p.name for p in live if p.name not in kept)
    ordered = sorted(current, key=lambda p: -1 if p.index is None else p.index)

    evicted = _evicted(pods, attempt, live)
    if evicted is not None:
        return evicted
    for pod in ordered:
        if pod.exit_code in c.PERMANENT_EXIT_CODES:
            return Decision(
                c.FAILED,
                c.REASON_PERMANENT_ERROR,
                in_user_terms(job, _describe_exit(pod)) + " (permanent: not retried)",
            )
    found = faults.detect(ordered, attempt)
    if found:  # after permanent errors (they fail the job wherever it runs), before the job's own failures
        return replace_faulty_ranks(job, state, found, ordered) or fault_restart(found, live)
    failed = [p for p in ordered if p.failed]
    if failed:
        detail = in_user_terms(job, _describe_exit(failed[0]))
        stopped = [p for p in failed if p.exit_code == c.EXIT_STOPPED]
        if (
            stopped
        ):  # SIGTERM from outside (eviction, preemption): the ranks checkpointed; not the job's fault
            return Decision(
                c.RESTARTING,
                c.REASON_STOPPED,
                f"{_describe_exit(stopped[0])}; restarting all ranks from the checkpoint (not counted "
                "against spec.runPolicy.backoffLimit)",
                delete=tuple(p.name for p in live),
                restart=True,
                stopped=True,
            )
        return _restart_or_fail(job, state, c.REASON_GANG_RESTART, detail, live)

    workers = [p for p in ordered if p.role == c.ROLE_WORKER]
    if len(workers) == job.workers and all(p.exit_code == 0 for p in workers):
        return Decision(c.SUCCEEDED, c.REASON_SUCCEEDED, f"all {job.replicas} ranks succeeded")
    deadline = job.active_deadline_seconds
    if deadline is not None and state.start_time is not None and now - state.start_time >= deadline:
        return Decision(
            c.FAILED,
            c.REASON_DEADLINE,
            f"job ran longer than spec.runPolicy.activeDeadlineSeconds={deadline}",
        )
    replaced = replace_lost_pod(job, state, ordered, wanted, pods)
    if replaced is not None:
        return replaced
    lost = _pod_lost(job, state, ordered, wanted, live)
    if lost is not None:
        return lost
    timeout = _timeouts(job, ordered, now)
    if timeout is not None:
        return timeout

    taken = {p.name for p in pods}
    names = {i: (render.scheduler_name(job) if i is None else render.worker_name(job, i)) for i in wanted}
    # A name still held by a terminating pod blocks creation; the next pass creates it.
    create = tuple(i for i in wanted if names[i] not in taken)
    up = [p for p in ordered if p.running or p.exit_code == 0]
    if extra or (state.phase == c.RESTARTING and len(up) < len(wanted)):
        wait = restart_backoff(attempt) - (now - (state.restart_time or now - 1e9))
        # Issue 11: no new pod while any pod of the old gang still terminates (a pod whose name was free, e.g.
        # after spec.replicas grew, would otherwise join the old gang's scheduler).
        if extra or wait > 0 or any(p.deleting for p in pods):
            create = ()
        reason = (
            state.reason
            if state.reason in (c.REASON_STOPPED, c.REASON_EVICTED, *c.FAULT_REASONS)
            else c.REASON_GANG_RESTART
        )
        return Decision(
            c.RESTARTING, reason, state.message or "restarting all ranks", create=create, delete=extra
        )
    if len(up) == len(wanted):
        return Decision(c.RUNNING, c.REASON_ALL_RANKS_RUNNING, f"all {len(wanted)} pods running")
    waiting = len(wanted) - len(up)
    message = f"{waiting} of {len(wanted)} pods not running yet"
    blocked = next(((p, why) for p in ordered if (why := start_problem(p))), None)
    if blocked is not None:
        # Issue 11: the reason a pod cannot start is in status at once, not only in the pod's own status.
        pod, why = blocked
        limit = job.scheduling_timeout_seconds
        return Decision(
            c.PENDING,
            c.REASON_POD_START_BLOCKED,
            in_user_terms(
                job,
                f"{message}; pod {pod.name} cannot start: {why} (the job fails after "
                f"spec.runPolicy.schedulingTimeoutSeconds={limit})",
            ),
            create=create,
        )
    unscheduled = next((p for p in ordered if p.node is None and p.unschedulable and not p.terminated), None)
    if unscheduled is not None:
        # Waiting for room (devices, quota, an unbound PVC) is normal for a while; say what the scheduler says.
        message += (
            f"; pod {unscheduled.name} not scheduled yet: {unscheduled.unschedulable} (the job fails after "
            f"spec.runPolicy.schedulingTimeoutSeconds={job.scheduling_timeout_seconds})"
        )
    return Decision(c.PENDING, c.REASON_PODS_PENDING, message, create=create)
