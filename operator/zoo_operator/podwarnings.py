"""Why a pod cannot start, when only an Event says so: which pods to look at (pure; observe.py reads the Events).

A real kubelet that cannot mount a volume leaves the container waiting as ContainerCreating without a message
and reports the reason as a Warning Event `FailedMount` on the pod (kubernetes pkg/kubelet/events/event.go,
pkg/volume/util/operationexecutor/operation_generator.go). Reading Events costs an API call per pod, so only pods
that are scheduled, not started after START_WARNING_AFTER_SECONDS and without a waiting message are looked at,
each at most every START_WARNING_REREAD_SECONDS, and at most START_WARNING_READS_PER_PASS per pass.
"""

from __future__ import annotations

from zoo_operator.podview import PodView

START_WARNING_AFTER_SECONDS = 5.0
START_WARNING_REREAD_SECONDS = 10.0
START_WARNING_READS_PER_PASS = 4

# pod uid -> (when read, "Reason: message" of its newest Warning Event, or "")
Cache = dict[str, tuple[float, str]]


def needs_look(pod: PodView, now: float) -> bool:
    """Whether a pod is stuck before its container starts with nothing in its own status saying why."""
    return bool(
        pod.node
        and not pod.running
        and not pod.terminated
        and not pod.deleting
        and not pod.waiting_message
        and pod.created is not None
        and now - pod.created >= START_WARNING_AFTER_SECONDS
    )
