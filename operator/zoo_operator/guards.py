"""What must hold before the operator writes a job's objects by name (issue 24): pure decisions on plain data.

- Ownership. Every object the operator creates, patches or deletes by name (the Service, the launch/rank-table
  ConfigMap, the NetworkPolicy, the PodGroup, the rank pods) must carry the job's controller ownerReference
  (render.owner_reference). Anyone allowed to create ConfigMaps in the namespace can create `<job>-ranktable`
  first; the apiserver then answers the operator's create with 409 AlreadyExists. Adopting that object would let
  its author choose the rank table (the ranks' peer addresses) or have the operator patch or delete an object it
  does not own. So an object of another owner is never used, patched or deleted: the job waits with condition
  ObjectsOwned=False naming it and what to do, and goes on once it is gone. The same rule as Kubernetes'
  controllers (a Job's controller only adopts pods whose controllerRef it holds: `metav1.IsControlledBy`,
  k8s.io/apimachinery pkg/apis/meta/v1/controller_ref.go; kubeflow trainer's "never touch pods it does not own").
- Queue. A spec.scheduling.queue that names no LocalQueue of the namespace, while Kueue's API is served, would
  leave the pods gated forever with nothing said (Kueue creates no Workload for them). The job waits with
  condition QueueFound=False until the LocalQueue exists.

observe.py reads the owners (`Owners`) and the LocalQueue; the planner applies the decisions here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from zoo_operator import conditions as c

# (kind, name) -> the UID of the object's controller ownerReference ("" when it has none), for each object that
# exists among those read by name in a pass. An object that is not there has no entry.
Owners = Mapping[tuple[str, str], str]
# Neither a deleted foreign object nor a created LocalQueue sends the operator an event (it watches only its own
# labelled objects): a job waiting on one is looked at again this often.
RECHECK_SECONDS = 10.0
# A create answered 409 AlreadyExists is looked into this soon (most often the operator's own object that its
# watch has not shown yet; else someone else's, which stops the job at once).
TAKEN_RECHECK_SECONDS = 1.0


def foreign(job_uid: str, owners: Owners | None) -> list[tuple[str, str]]:
    """The (kind, name) of the objects read that exist and are not controlled by the job, sorted."""
    return sorted(key for key, uid in (owners or {}).items() if uid != job_uid)


def still_taken(
    taken: Iterable[tuple[str, str]], job_uid: str, owners: Owners | None
) -> frozenset[tuple[str, str]]:
    """Of the names whose create was answered 409 (JobMemory.taken), those to keep watching: all while their
    owners were not read, then only those another owner holds (an own object the index had not seen yet, or one
    that is gone, needs nothing more)."""
    kept = frozenset(taken)
    if owners is None:
        return kept
    return frozenset(key for key in kept if key in owners and owners[key] != job_uid)


def not_owned_message(namespace: str, objects: Iterable[tuple[str, str]]) -> str:
    """The condition's message: which objects, why the job waits, what to do."""
    listed = list(objects)
    names = ", ".join(f"{kind} {name}" for kind, name in listed)
    commands = "; ".join(f"kubectl delete {kind.lower()} {name} -n {namespace}" for kind, name in listed)
    return (
        f"{names} in namespace {namespace} already exists and is not owned by this job (no controller "
        "ownerReference with the job's UID): the operator does not use, patch or delete it, and creates no pods "
        f"until it is gone; delete it ({commands}) or give the job another name"
    )


def owned_condition(
    namespace: str, objects: list[tuple[str, str]], had: bool
) -> tuple[bool, str, str] | None:
    """(status, reason, message) of condition ObjectsOwned: False while `objects` (foreign) is not empty, True
    once it is after having been False (`had`: the job carries the condition), None when it never mattered."""
    if objects:
        return False, c.REASON_OBJECT_NOT_OWNED, not_owned_message(namespace, objects)
    if had:
        return True, c.REASON_OBJECTS_OWNED, "every object the job uses by name is its own"
    return None


def queue_message(namespace: str, queue: str) -> str:
    """The condition's message for a LocalQueue that does not exist."""
    return (
        f"spec.scheduling.queue names LocalQueue {queue}, which does not exist in namespace {namespace} "
        f"(kubectl get localqueues -n {namespace}); the job waits, without pods, until it is created"
    )


def queue_condition(
    namespace: str, queue: str | None, found: bool | None, had: bool
) -> tuple[bool, str, str] | None:
    """(status, reason, message) of condition QueueFound: False when the LocalQueue was read and is missing,
    True when it was read and exists after having been missing (`had`), None otherwise (not read this pass:
    no queue named, Kueue not served, or the job's pods exist already)."""
    if queue is None or found is None:
        return None
    if not found:
        return False, c.REASON_QUEUE_NOT_FOUND, queue_message(namespace, queue)
    if had:
        return True, c.REASON_QUEUE_FOUND, f"LocalQueue {queue} exists in namespace {namespace}"
    return None
