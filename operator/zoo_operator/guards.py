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


# ---- writes by name carry the apiserver's own precondition (issue 24) ---------------------------------------------
# Owners are read before a pass writes, but another owner's object may take the name between that read and the
# write (delete, then create). Each write by name therefore names the exact object it was meant for, and the
# apiserver refuses it otherwise, in the same request:
# - a JSON patch (RFC 6902) whose first op is `test /metadata/uid`: evaluated against the stored object inside
#   the apiserver's update (patch.go applies the patch to the current object), a mismatch is 422 Invalid. This
#   holds on the status subresource too, where a merge patch's metadata.uid is NOT honoured (the status strategy
#   copies the stored metadata over the patched object before validation; checked against the real apiserver by
#   tests/integration/test_write_preconditions.py);
# - a merge patch carrying metadata.uid on the main resource: uid is immutable (ValidateObjectMetaUpdate), 422;
#   the garbage collector guards its ownerReference patches the same way (pkg/controller/garbagecollector/patch.go);
# - a delete with preconditions.uid: 409 Conflict (kube.delete_pod).
Op = dict[str, object]


def pointer(*keys: str) -> str:
    """The JSON pointer (RFC 6901) of nested keys: `~` and `/` escaped, as a ConfigMap key or annotation may hold."""
    return "".join("/" + k.replace("~", "~0").replace("/", "~1") for k in keys)


def controller_uid(meta: Mapping[str, object]) -> str:
    """The UID of the controller ownerReference in an object's metadata ("" when it has none): the rule by which
    an object is the job's (module doc)."""
    refs = meta.get("ownerReferences")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict) and ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def uid_test(uid: str) -> Op:
    """The op that makes the apiserver refuse a JSON patch of any object but the one with this UID."""
    if not uid:
        raise ValueError("guards.uid_test: an object UID is required")
    return {"op": "test", "path": "/metadata/uid", "value": uid}


def data_patch(uid: str, data: Mapping[str, str], has_data: bool) -> list[Op]:
    """A JSON patch setting ConfigMap keys (others kept, as a merge patch would) of exactly the object `uid`."""
    ops: list[Op] = [uid_test(uid)]
    if not has_data:
        ops.append({"op": "add", "path": "/data", "value": {}})
    ops += [{"op": "add", "path": pointer("data", k), "value": v} for k, v in sorted(data.items())]
    return ops


def status_patch(uid: str, merge: Mapping[str, object], has_status: bool) -> list[Op]:
    """The top-level merge patch of status.patch_for as a JSON patch of exactly the job `uid`. A key the merge
    patch removes (null) is added as null, which the apiserver prunes from a non-nullable field (Kubernetes docs,
    "Defaulting and Nullable" of CustomResourceDefinitions), so no op fails on a key already gone; a nested
    object is sent whole, without the nulls patch_for adds for a merge."""
    ops: list[Op] = [uid_test(uid)]
    if not has_status:
        ops.append({"op": "add", "path": "/status", "value": {}})
    for key, value in merge.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None}
        ops.append({"op": "add", "path": pointer("status", key), "value": value})
    return ops


def finalizer_patch(uid: str, current: list[str], finalizer: str) -> list[Op]:
    """A JSON patch removing one finalizer of exactly the pod `uid`, refused if the list changed meanwhile."""
    return [
        uid_test(uid),
        {"op": "test", "path": "/metadata/finalizers", "value": current},
        {"op": "replace", "path": "/metadata/finalizers", "value": [f for f in current if f != finalizer]},
    ]
