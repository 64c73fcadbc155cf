"""Why a pod cannot start, when only an Event says so: fold the kubelet's newest Warning Event into the pod view.

A real kubelet that cannot mount a volume leaves the container waiting as ContainerCreating without a message
and reports the reason as a Warning Event `FailedMount` on the pod (kubernetes pkg/kubelet/events/event.go,
pkg/volume/util/operationexecutor/operation_generator.go). Reading Events costs an API call per pod, so only pods
that are scheduled, not started after START_WARNING_AFTER_SECONDS and without a waiting message are looked at,
each at most every START_WARNING_REREAD_SECONDS, and at most START_WARNING_READS_PER_PASS per pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from zoo_operator import kube
from zoo_operator.podview import PodView

START_WARNING_AFTER_SECONDS = 5.0
START_WARNING_REREAD_SECONDS = 10.0
START_WARNING_READS_PER_PASS = 4

# pod uid -> (when read, "Reason: message" of its newest Warning Event, or "")
Cache = dict[str, tuple[float, str]]


def needs_look(pod: PodView, now: float) -> bool:
    """Whether a pod is stuck before its container starts with nothing in its own status saying why."""
    return bool(pod.node and not pod.running and not pod.terminated and not pod.deleting
                and not pod.waiting_message and pod.created is not None
                and now - pod.created >= START_WARNING_AFTER_SECONDS)


async def fold(namespace: str, pods: Sequence[PodView], cache: Cache,
               now: float) -> tuple[list[PodView], Cache]:
    """The pods, with a stuck pod's newest Warning Event as its waiting_message, and the job's cache after
    this pass's reads (a new dict: the executor stores it, the caller's `cache` is left as it was)."""
    live = {p.uid for p in pods}
    after: Cache = {uid: seen for uid, seen in cache.items() if uid in live}
    out: list[PodView] = []
    reads = 0
    for pod in pods:
        if needs_look(pod, now):
            seen = after.get(pod.uid)
            due = seen is None or now - seen[0] >= START_WARNING_REREAD_SECONDS
            if due and reads < START_WARNING_READS_PER_PASS:
                reads += 1
                warnings = await kube.pod_warnings(namespace, pod.name)
                seen = after[pod.uid] = (now, ": ".join(warnings[-1]) if warnings else "")
            if seen and seen[1]:
                pod = dataclasses.replace(pod, waiting_message=seen[1])
        out.append(pod)
    return out, after
