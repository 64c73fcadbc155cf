"""A small, plain view of one of the job's pods: what policy and status need, nothing else.

The operator's pod index stores these instead of whole pod bodies, so memory stays bounded for big jobs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from zoo_operator import conditions as c

# metav1.Time is serialized with second precision (RFC 3339 without fractions).
TIMESTAMP_RESOLUTION_SECONDS = 1.0


def parse_time(text: Any) -> float | None:
    """Unix seconds from an RFC 3339 timestamp as the apiserver writes it, or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def format_time(ts: float) -> str:
    """An RFC 3339 timestamp (UTC, seconds) from unix seconds."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PodView:
    """The observed state of one pod."""

    name: str
    uid: str = ""
    owner_uid: str = ""
    role: str = c.ROLE_WORKER
    index: int | None = None
    attempt: int = 0
    phase: str = "Pending"
    node: str | None = None
    ip: str | None = None
    created: float | None = None
    deleting: bool = False
    unschedulable: str | None = None
    kueue_finalizer: bool = False
    kueue_unretriable: bool = False  # c.KUEUE_RETRIABLE_ANNOTATION is "false"
    # When the scheduler last changed its verdict on the pod (PodScheduled's lastTransitionTime, unless the pod
    # is gated): a pod admitted by Kueue after minutes behind a gate starts its timeouts from there.
    scheduling_since: float | None = None
    waiting_reason: str | None = None
    waiting_message: str | None = None
    running: bool = False
    exit_code: int | None = None
    terminated_reason: str | None = None
    termination_message: str | None = None
    device_annotation: str | None = None
    host_ip: str | None = None
    # Waiting for admission, not for a node: scheduling gates (Kueue's kueue.x-k8s.io/admission gate) or a
    # Volcano gang that is not ready. schedulingTimeoutSeconds does not count such a pod.
    queued: bool = False
    spec_hash: str = ""
    # Who stopped the pod from outside, when its status says so: Kueue's TerminationTarget condition (set on
    # each pod of a group just before deleting it on preemption/eviction; kueue pkg/controller/jobs/pod
    # pod_controller.go Stop) or Kubernetes' DisruptionTarget (preemption by the scheduler, the Eviction API,
    # taint manager, pod GC; kubernetes.io/docs/concepts/workloads/pods/disruptions/#pod-disruption-conditions).
    evicted_by: str | None = None
    # Issue 23 (faults.fold, from observe's reads): the node's Ready condition (None: not read), why it is not
    # Ready, and the NPUs this pod holds that the device plugin reports faulty: (physical id, reason).
    node_ready: bool | None = None
    node_problem: str = ""
    faulty_npus: tuple[tuple[int, str], ...] = ()

    @property
    def waiting_since(self) -> float | None:
        """Since when the pod waits for a node or for its start: its creation, or later when it was gated
        until then (the scheduler's last verdict on it)."""
        if self.created is None:
            return None
        # API timestamps are truncated to whole seconds: the instant lies in [t, t + 1), so count from its end
        # and a timeout never fires before its full time has passed.
        return max(self.created, self.scheduling_since or self.created) + TIMESTAMP_RESOLUTION_SECONDS

    @property
    def terminated(self) -> bool:
        """Whether the pod's container has ended (or the pod failed without one, e.g. evicted)."""
        return self.exit_code is not None or self.phase in ("Succeeded", "Failed")

    @property
    def failed(self) -> bool:
        """Whether the pod ended unsuccessfully."""
        return (self.exit_code is not None and self.exit_code != 0) or self.phase == "Failed"


def _int_or(value: Any, default: int | None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# Volcano's PodScheduled message while the PodGroup cannot start yet ("x/x tasks in gang unschedulable: pod group
# is not ready, x Pending, x minAvailable"; volcano-sh/volcano docs/design/scheduling-reason.md).
VOLCANO_GANG_WAIT = "pod group is not ready"
# Pod conditions that say the pod is being stopped from outside, not failing (condition type -> who).
EVICTION_CONDITIONS = {"TerminationTarget": "Kueue", "DisruptionTarget": "Kubernetes"}


def view(body: Mapping[str, Any]) -> PodView:
    """The PodView of a pod object (a dict as the API returns it); tolerant of missing fields."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    status = body.get("status") or {}
    role = labels.get(c.LABEL_ROLE, c.ROLE_WORKER)
    owner = next(
        (ref.get("uid", "") for ref in meta.get("ownerReferences") or [] if ref.get("controller")), ""
    )
    unschedulable = None
    # Gated: spec.schedulingGates, or just ungated and not yet seen by the scheduler, whose PodScheduled condition
    # still says SchedulingGated (Kubernetes pod-scheduling-readiness: the scheduler sets that reason).
    queued = bool((body.get("spec") or {}).get("schedulingGates"))
    scheduling_since = None
    evicted_by = None
    for cond in status.get("conditions") or []:
        if cond.get("type") in EVICTION_CONDITIONS and cond.get("status") == "True":
            evicted_by = f"{EVICTION_CONDITIONS[cond['type']]}: {cond.get('reason') or cond['type']}"
        if cond.get("type") != "PodScheduled":
            continue
        if cond.get("reason") != "SchedulingGated":
            scheduling_since = parse_time(cond.get("lastTransitionTime"))
        if cond.get("status") == "False":
            if cond.get("reason") == "SchedulingGated":
                queued = True
            else:
                unschedulable = cond.get("message") or cond.get("reason") or "unschedulable"
    waiting_reason = waiting_message = terminated_reason = message = None
    exit_code = None
    running = False
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting"):
            waiting_reason = state["waiting"].get("reason")
            waiting_message = state["waiting"].get("message")
        if state.get("running") is not None:
            running = True
        term = state.get("terminated")
        if term:
            exit_code = _int_or(term.get("exitCode"), 1)
            terminated_reason = term.get("reason")
            message = term.get("message")
    return PodView(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        owner_uid=str(owner),
        role=role,
        index=_int_or(labels.get(c.LABEL_RANK), None) if role == c.ROLE_WORKER else None,
        attempt=_int_or(annotations.get(c.ANNOTATION_ATTEMPT), 0) or 0,
        phase=str(status.get("phase") or "Pending"),
        node=(body.get("spec") or {}).get("nodeName"),
        ip=status.get("podIP"),
        created=parse_time(meta.get("creationTimestamp")),
        deleting=bool(meta.get("deletionTimestamp")),
        unschedulable=unschedulable,
        scheduling_since=scheduling_since,
        evicted_by=evicted_by,
        kueue_finalizer=c.KUEUE_FINALIZER in (meta.get("finalizers") or []),
        kueue_unretriable=annotations.get(c.KUEUE_RETRIABLE_ANNOTATION) == "false",
        waiting_reason=waiting_reason,
        waiting_message=waiting_message,
        running=running,
        exit_code=exit_code,
        terminated_reason=terminated_reason,
        termination_message=message,
        device_annotation=annotations.get(c.ASCEND_ANNOTATION) or annotations.get(c.ASCEND_NPU_ANNOTATION),
        host_ip=status.get("hostIP"),
        queued=queued or VOLCANO_GANG_WAIT in str(unschedulable or ""),
        spec_hash=str(annotations.get(c.ANNOTATION_SPEC_HASH) or ""),
    )
