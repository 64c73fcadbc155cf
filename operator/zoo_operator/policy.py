"""Run-policy decisions: given the job, its last status and its pods, what should happen now.

Pure: plain data in, a `Decision` out. The reconciler carries the decision out (creates, deletes, writes status).
Order of precedence: finished jobs only clean up; suspend; permanent failures; retryable failures (whole-gang
restart within backoffLimit); success; activeDeadlineSeconds; scheduling / image-pull timeouts; then creating
whatever pods are missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from zoo_operator import conditions as c
from zoo_operator import logparse, render
from zoo_operator.podview import PodView, parse_time
from zoo_operator.spec import JobSpec

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
    return min(RESTART_BACKOFF_SECONDS * 2 ** (restarts - 1), RESTART_BACKOFF_MAX_SECONDS)


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


def state_from_status(status: Mapping[str, Any] | None) -> JobState:
    """JobState from a status dict (missing or malformed fields fall back to defaults)."""
    status = status or {}
    restarts = status.get("restarts")
    return JobState(
        phase=status.get("phase"),
        reason=status.get("reason"),
        message=status.get("message"),
        restarts=restarts if isinstance(restarts, int) and restarts >= 0 else 0,
        start_time=parse_time(status.get("startTime")),
        completion_time=parse_time(status.get("completionTime")),
        restart_time=parse_time(status.get("restartTime")),
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


def pods_to_clean(policy: str, pods: Sequence[PodView]) -> tuple[str, ...]:
    """Pods to delete once the job has finished: All, the still Running ones, or None."""
    live = [p for p in pods if not p.deleting]
    if policy == "All":
        return tuple(p.name for p in live)
    if policy == "Running":
        return tuple(p.name for p in live if not p.terminated)
    return ()


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


def _finished(job: JobSpec, state: JobState, pods: Sequence[PodView], now: float) -> Decision:
    ttl = job.ttl_seconds_after_finished
    expired = ttl is not None and state.completion_time is not None and now >= state.completion_time + ttl
    return Decision(str(state.phase), state.reason or "", state.message or "",
                    delete=pods_to_clean(job.clean_pod_policy, pods), delete_job=expired)


def _timeouts(job: JobSpec, pods: Sequence[PodView], now: float) -> Decision | None:
    limit = job.scheduling_timeout_seconds
    for pod in pods:
        if pod.terminated or pod.running or pod.created is None or pod.queued:
            continue  # a queued pod waits for admission (Kueue), not for the scheduler
        waited = int(now - pod.created)
        if waited < limit:
            continue
        if pod.waiting_reason in c.IMAGE_PULL_REASONS:
            return Decision(c.FAILED, c.REASON_IMAGE_PULL,
                            f"pod {pod.name}: {pod.waiting_reason} for {waited}s "
                            f"(spec.runPolicy.schedulingTimeoutSeconds={limit}): {pod.waiting_message or ''}".rstrip(": "))
        if pod.node is None:
            why = pod.unschedulable or "not scheduled"
            return Decision(c.FAILED, c.REASON_SCHEDULING_TIMEOUT,
                            f"pod {pod.name} not scheduled after {waited}s "
                            f"(spec.runPolicy.schedulingTimeoutSeconds={limit}): {why}")
    return None


def decide(job: JobSpec, state: JobState, pods: Sequence[PodView], now: float) -> Decision:
    """The next step for a valid job."""
    if state.phase in c.FINISHED_PHASES:
        return _finished(job, state, pods, now)
    live = [p for p in pods if not p.deleting]
    if job.suspend:
        return Decision(c.SUSPENDED, c.REASON_SUSPENDED, "spec.runPolicy.suspend is true: pods deleted, status kept",
                        delete=tuple(p.name for p in live))
    attempt = state.restarts
    wanted: list[int | None] = ([None] if job.launch == "dynamic" else []) + list(range(job.replicas))
    current = [p for p in live if p.attempt >= attempt and (p.role != c.ROLE_WORKER or p.index in wanted)]
    # Pods of an older attempt, and workers beyond spec.replicas, are never reused.
    extra = tuple(p.name for p in live if p not in current)
    ordered = sorted(current, key=lambda p: (-1 if p.index is None else p.index))

    for pod in ordered:
        if pod.exit_code in c.PERMANENT_EXIT_CODES:
            return Decision(c.FAILED, c.REASON_PERMANENT_ERROR, _describe_exit(pod) + " (permanent: not retried)")
    failed = [p for p in ordered if p.failed]
    if failed:
        detail = _describe_exit(failed[0])
        if attempt < job.backoff_limit:
            return Decision(c.RESTARTING, c.REASON_GANG_RESTART,
                            f"{detail}; restarting all ranks (restart {attempt + 1} of {job.backoff_limit})",
                            delete=tuple(p.name for p in live), restart=True)
        return Decision(c.FAILED, c.REASON_BACKOFF_LIMIT,
                        f"{detail}; no restarts left (spec.runPolicy.backoffLimit={job.backoff_limit})")

    workers = [p for p in ordered if p.role == c.ROLE_WORKER]
    if len(workers) == job.replicas and all(p.exit_code == 0 for p in workers):
        return Decision(c.SUCCEEDED, c.REASON_SUCCEEDED, f"all {job.replicas} ranks succeeded")
    deadline = job.active_deadline_seconds
    if deadline is not None and state.start_time is not None and now - state.start_time >= deadline:
        return Decision(c.FAILED, c.REASON_DEADLINE,
                        f"job ran longer than spec.runPolicy.activeDeadlineSeconds={deadline}")
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
        if extra or wait > 0:
            create = ()
        return Decision(c.RESTARTING, c.REASON_GANG_RESTART, state.message or "restarting all ranks",
                        create=create, delete=extra)
    if len(up) == len(wanted):
        return Decision(c.RUNNING, c.REASON_ALL_RANKS_RUNNING, f"all {len(wanted)} pods running")
    waiting = len(wanted) - len(up)
    return Decision(c.PENDING, c.REASON_PODS_PENDING, f"{waiting} of {len(wanted)} pods not running yet",
                    create=create)
