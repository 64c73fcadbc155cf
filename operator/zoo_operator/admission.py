"""Pods the apiserver refuses at creation: what the job does about it (pure).

The executor (executor.py) records a refusal as data: a 403 from Pod Security admission, RBAC or a
ResourceQuota, a 422 from a validating webhook or a LimitRange. A quota refusal may clear by itself when other
pods end, so the job waits, with the condition PodsAdmitted=False (reason QuotaExceeded) quoting the refusal,
until spec.runPolicy.schedulingTimeoutSeconds after the first refusal; any other refusal fails the job at once.
Either way a failing job deletes the pods it already has, so nothing keeps holding the quota.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from zoo_operator import conditions as c
from zoo_operator import policy as run_policy
from zoo_operator.podview import PodView
from zoo_operator.policy import Decision, JobState
from zoo_operator.spec import JobSpec

# Longest piece of the apiserver's message quoted in status.
MESSAGE_CHARS = 400
# While a quota refuses pods, creation is tried again this often (besides every event of the job).
QUOTA_RETRY_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Refusal:
    """The apiserver refused to create one of the job's pods."""

    pod: str
    code: int
    message: str
    since: float  # when the first refusal of this kind was seen

    @property
    def quota(self) -> bool:
        """Whether a ResourceQuota refused (it may admit the pod later)."""
        return self.code == 403 and "exceeded quota" in self.message


def quote(refusal: Refusal) -> str:
    """The refusal for status.message: HTTP code, pod and the apiserver's words (bounded)."""
    text = refusal.message
    text = text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."
    return f"the apiserver refused pod {refusal.pod} ({refusal.code}): {text}"


def decide(
    job: JobSpec,
    state: JobState,
    pods: Sequence[PodView],
    refusal: Refusal | None,
    now: float,
    policy: Decision | None = None,
) -> Decision | None:
    """Fail the job for a refusal (deleting its live pods), or None to let run policy (`policy`) decide.

    While a quota refuses pods, a scheduling or image-pull timeout of the admitted ones (due no later, as they
    were created before the first refusal) is reported as the quota refusal: that is what the job waited for."""
    if refusal is None or state.phase in c.FINISHED_PHASES:
        return None
    limit = job.scheduling_timeout_seconds
    timed_out = policy is not None and policy.reason in (c.REASON_SCHEDULING_TIMEOUT, c.REASON_IMAGE_PULL)
    if refusal.quota and now - refusal.since < limit and not timed_out:
        return None
    message = quote(refusal)
    if refusal.quota:
        message += f" (waited {int(now - refusal.since)}s: spec.runPolicy.schedulingTimeoutSeconds={limit})"
    return Decision(
        c.FAILED, c.REASON_ADMISSION_REFUSED, message, delete=tuple(p.name for p in pods if not p.deleting)
    )


def due(job: JobSpec, refusal: Refusal | None, now: float) -> float | None:
    """When a job waiting on a quota needs its next pass (a retry, or the timeout), else None."""
    if refusal is None:
        return None
    if not refusal.quota:
        return now
    return min(now + QUOTA_RETRY_SECONDS, refusal.since + job.scheduling_timeout_seconds)


def decide_pass(
    job: JobSpec, prev: Mapping[str, Any], pods: Sequence[PodView], refusal: Refusal | None, now: float
) -> tuple[JobState, Decision]:
    """The pass's decision: run policy, overridden by a refusal the apiserver gave (pure). Observe asks it to
    know which logs to read before pods go; the planner asks it again on the same data and gets the same."""
    state = run_policy.state_from_status(prev)
    decision = run_policy.decide(job, state, pods, now)
    return state, decide(job, state, pods, refusal, now, decision) or decision
