"""Issue 24, on plain data: objects of another owner with a name the job would use, and a missing LocalQueue
(guards.py, applied by planner.plan; observe.objects_by_name says what is read). No cluster, no event loop."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import jsonpatch
import pytest
from operator_jobs import ascend_job, job

from zoo_operator import conditions as c
from zoo_operator import guards, observe, planner, reconcile, runner, status
from zoo_operator.memory import JobMemory, Observation
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings

SETTINGS = Settings(status_interval_seconds=5.0, log_tail_lines=2)
T0 = 1_800_000_000.0
CPU_PODS = ("demo-sched", "demo-worker-0", "demo-worker-1")


def plan(body: dict[str, Any], mem: JobMemory | None = None, **seen: Any) -> tuple[planner.Plan, JobMemory]:
    mem = mem or JobMemory()
    before = dataclasses.replace(mem)
    out = planner.plan(Observation(body=body, pods=(), now=T0, **seen), mem, SETTINGS)
    assert mem == before, "plan() changed the memory"
    return out, mem


def condition(p: planner.Plan, ctype: str) -> dict[str, Any] | None:
    return next((x for x in (p.status or {}).get("conditions", []) if x["type"] == ctype), None)


def after(body: dict[str, Any], p: planner.Plan) -> dict[str, Any]:
    """The body after the pass of plan `p` wrote its status."""
    assert p.status is not None
    return {**body, "status": p.status}


@pytest.mark.parametrize("owner", ["", "uid-of-another-job"], ids=["no-owner", "other-job"])
def test_a_foreign_rank_table_config_map_stops_every_write_by_name(owner: str) -> None:
    body = ascend_job(replicas=1)
    p, _ = plan(body, owners={("ConfigMap", "asc-ranktable"): owner})
    assert p.create == [] and p.ensure == [] and p.config_map is None and p.created_event is None
    assert p.status is not None and p.status["phase"] == c.PENDING
    cond = condition(p, c.OBJECTS_OWNED)
    assert cond is not None and cond["status"] == "False" and cond["reason"] == c.REASON_OBJECT_NOT_OWNED
    assert "ConfigMap asc-ranktable" in cond["message"]
    assert "kubectl delete configmap asc-ranktable -n ns1" in cond["message"]
    assert ("Warning", c.REASON_OBJECT_NOT_OWNED, cond["message"]) in p.events
    assert p.status["reason"] == c.REASON_OBJECT_NOT_OWNED and p.status["message"] == cond["message"]
    assert len([e for e in p.events if e[1] == c.REASON_OBJECT_NOT_OWNED]) == 1
    # Not marked ensured: the next pass reads the owners again; and it comes soon (no event will).
    assert p.memory.ensured_uid is None
    assert p.next_due is not None and p.next_due <= T0 + guards.RECHECK_SECONDS


def test_the_job_proceeds_once_the_foreign_object_is_gone() -> None:
    body = ascend_job(replicas=1)
    first, _ = plan(body, owners={("ConfigMap", "asc-ranktable"): ""})
    assert first.status is not None and first.status["reason"] == c.REASON_OBJECT_NOT_OWNED
    again, _ = plan(after(body, first), owners={("ConfigMap", "asc-ranktable"): ""})
    assert not [e for e in again.events if e[1] == c.REASON_OBJECT_NOT_OWNED], "the Warning is posted once"
    gone, _ = plan(after(body, first), owners={})
    assert [o["metadata"]["name"] for o in gone.create] == ["asc-worker-0"]
    assert {(o["kind"], o["metadata"]["name"]) for o in gone.ensure} >= {
        ("Service", "asc"),
        ("ConfigMap", "asc-ranktable"),
    }
    assert gone.config_map is not None and gone.memory.ensured_uid == "uid-1"
    cond = condition(gone, c.OBJECTS_OWNED)
    assert cond is not None and cond["status"] == "True" and cond["reason"] == c.REASON_OBJECTS_OWNED


def test_objects_the_job_controls_are_its_own() -> None:
    p, _ = plan(job(), owners={("Service", "demo"): "uid-1", ("ConfigMap", "demo-launch"): "uid-1"})
    assert tuple(o["metadata"]["name"] for o in p.create) == CPU_PODS
    # They exist already (e.g. after an operator restart): only the NetworkPolicy, not read, is created.
    assert [(o["kind"], o["metadata"]["name"]) for o in p.ensure] == [("NetworkPolicy", "demo")]
    assert condition(p, c.OBJECTS_OWNED) is None  # never mattered: no condition at all


def test_a_foreign_pod_holding_a_rank_name_stops_the_creations_until_it_is_gone() -> None:
    taken = frozenset({("Pod", "demo-worker-0")})
    mem = JobMemory(uid="uid-1", ensured_uid="uid-1", taken=taken)
    p, _ = plan(job(), mem, owners={("Pod", "demo-worker-0"): ""})
    assert p.create == [] and p.memory.taken is None  # kept: still held by someone else
    cond = condition(p, c.OBJECTS_OWNED)
    assert cond is not None and "Pod demo-worker-0" in cond["message"]
    assert "kubectl delete pod demo-worker-0 -n ns1" in cond["message"]
    gone, _ = plan(after(job(), p), mem, owners={})
    assert tuple(o["metadata"]["name"] for o in gone.create) == CPU_PODS
    assert gone.memory.taken == frozenset()


def test_a_409_on_the_jobs_own_pod_is_no_conflict() -> None:
    """The pod index had not shown the operator's own pod yet: read, found to be the job's, forgotten."""
    mem = JobMemory(uid="uid-1", ensured_uid="uid-1", taken=frozenset({("Pod", "demo-worker-0")}))
    p, _ = plan(job(), mem, owners={("Pod", "demo-worker-0"): "uid-1"})
    assert p.create and p.memory.taken == frozenset() and condition(p, c.OBJECTS_OWNED) is None


def test_a_finished_job_is_not_held_by_a_foreign_object() -> None:
    body = {**job(), "status": {"phase": c.SUCCEEDED, "conditions": []}}
    p, _ = plan(body, owners={("Service", "demo"): ""})
    assert condition(p, c.OBJECTS_OWNED) is None
    assert not [e for e in p.events if e[1] == c.REASON_OBJECT_NOT_OWNED]


def test_still_taken_keeps_unread_names_and_drops_own_and_gone_ones() -> None:
    taken = {("Pod", "a"), ("Pod", "b"), ("Pod", "c")}
    assert guards.still_taken(taken, "u", None) == frozenset(taken)
    assert guards.still_taken(taken, "u", {("Pod", "a"): "u", ("Pod", "b"): "x"}) == {("Pod", "b")}
    assert guards.foreign("u", {("Pod", "a"): "u", ("Pod", "b"): "", ("Service", "s"): "x"}) == [
        ("Pod", "b"),
        ("Service", "s"),
    ]


def test_what_observe_reads_by_name() -> None:
    """The first pass reads every object it would create; later passes only what the index lacks and the
    names a create was answered 409 for."""
    body = job(scheduling={"gang": True})
    obs = Observation(body=body, pods=(), now=T0, pod_group_served=True)
    parsed = planner.spec.parse(body, SETTINGS)
    first = observe.objects_by_name(parsed, obs, JobMemory(uid="uid-1"), SETTINGS)
    assert {(o["kind"], o["metadata"]["name"]) for o in first} == {
        ("Service", "demo"),
        ("ConfigMap", "demo-launch"),
        ("PodGroup", "demo"),
        ("NetworkPolicy", "demo"),
    }
    mem = JobMemory(uid="uid-1", ensured_uid="uid-1", taken=frozenset({("Pod", "demo-worker-1")}))
    later = dataclasses.replace(obs, existing={("Service", "demo")})
    assert [
        (o["kind"], o["metadata"]["name"]) for o in observe.objects_by_name(parsed, later, mem, SETTINGS)
    ] == [
        ("ConfigMap", "demo-launch"),
        ("Pod", "demo-worker-1"),
    ]


LQ = {"queue": "team-lq"}


def test_a_missing_local_queue_holds_the_pods_with_a_clear_condition() -> None:
    body = job(scheduling=LQ)
    p, _ = plan(body, local_queue=False)
    assert p.create == [] and p.status is not None and p.status["phase"] == c.PENDING
    assert p.status["reason"] == c.REASON_QUEUE_NOT_FOUND  # waiting, not Failed
    assert p.ensure, "the Service and ConfigMap are created meanwhile"
    cond = condition(p, c.QUEUE_FOUND)
    assert cond is not None and cond["status"] == "False" and cond["reason"] == c.REASON_QUEUE_NOT_FOUND
    assert "team-lq" in cond["message"] and "namespace ns1" in cond["message"]
    assert "kubectl get localqueues -n ns1" in cond["message"]
    assert ("Warning", c.REASON_QUEUE_NOT_FOUND, cond["message"]) in p.events
    assert p.next_due is not None and p.next_due <= T0 + guards.RECHECK_SECONDS
    found, _ = plan(after(body, p), local_queue=True)
    assert tuple(o["metadata"]["name"] for o in found.create) == CPU_PODS
    cond = condition(found, c.QUEUE_FOUND)
    assert cond is not None and cond["status"] == "True" and cond["reason"] == c.REASON_QUEUE_FOUND


@pytest.mark.parametrize("seen", [None, True], ids=["kueue-not-served", "queue-exists"])
def test_a_queue_that_exists_or_no_kueue_changes_nothing(seen: bool | None) -> None:
    p, _ = plan(job(scheduling=LQ), local_queue=seen)
    assert tuple(o["metadata"]["name"] for o in p.create) == CPU_PODS
    assert condition(p, c.QUEUE_FOUND) is None


def test_the_runner_counts_only_what_the_job_controls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Labels prove nothing: a pod or ConfigMap labelled as the job's, controlled by someone else, never reaches
    the pass (so it is never counted, patched or deleted); the ConfigMap is then read by name and refused."""
    seen: dict[str, Any] = {}

    async def fake_reconcile(
        body: Any, pods: Any, settings: Any, mem: Any, now: Any, emit: Any, existing: Any
    ) -> Any:
        seen.update(pods=[p.name for p in pods], existing=existing)
        return planner.Plan()

    monkeypatch.setattr(reconcile, "reconcile", fake_reconcile)
    mine = PodView(name="demo-worker-0", uid="p0", owner_uid="uid-1")
    look_alike = PodView(name="demo-worker-1", uid="p1", owner_uid="")
    objects = {("Service", "demo", "uid-1"), ("ConfigMap", "demo-launch", "uid-other")}
    r = runner.Runner(SETTINGS, lambda ns, name: [mine, look_alike], lambda ns, name: objects)
    r.observe(job())
    asyncio.run(r.pass_one("ns1/demo"))
    assert seen == {"pods": ["demo-worker-0"], "existing": {("Service", "demo")}}


# ---- write preconditions (issue 24): the JSON patches applied as RFC 6902 says (kopf's own jsonpatch) ------------# (jsonpatch is kopf's dependency; the apiserver applies patches with evanphx/json-patch: the same RFC)

OURS = {"metadata": {"uid": "u1", "name": "j-ranktable"}, "data": {"hccl.json": "old", "attempt": "0"}}


def test_data_patch_sets_keys_of_exactly_that_object_and_keeps_the_others() -> None:
    ops = guards.data_patch("u1", {"hccl.json": "new", "a/b~c": "x"}, has_data=True)
    out = jsonpatch.apply_patch(OURS, ops)
    assert out["data"] == {"hccl.json": "new", "attempt": "0", "a/b~c": "x"}
    other = {**OURS, "metadata": {"uid": "u2", "name": "j-ranktable"}}  # deleted and created again by someone
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(other, ops)
    empty = {"metadata": {"uid": "u1"}}  # a ConfigMap without data
    assert jsonpatch.apply_patch(empty, guards.data_patch("u1", {"k": "v"}, has_data=False))["data"] == {
        "k": "v"
    }


def test_status_patch_is_the_merge_patch_of_exactly_that_job() -> None:
    prev = {"phase": "Running", "message": "m", "progress": {"epoch": 1, "eta": 5}, "kopf": {"x": 1}}
    new = {"phase": "Succeeded", "progress": {"epoch": 2}, "kopf": {"x": 1}}
    merge = status.patch_for(prev, new)
    assert merge is not None
    job = {"metadata": {"uid": "j1"}, "status": prev}
    out = jsonpatch.apply_patch(job, guards.status_patch("j1", merge, has_status=True))["status"]
    # `message` arrives as null, which the apiserver prunes (a non-nullable field): the same as the merge patch
    assert {k: v for k, v in out.items() if v is not None} == new
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(
            {"metadata": {"uid": "j2"}, "status": {}}, guards.status_patch("j1", merge, True)
        )
    fresh = jsonpatch.apply_patch(
        {"metadata": {"uid": "j1"}}, guards.status_patch("j1", {"phase": "Pending"}, False)
    )
    assert fresh["status"] == {"phase": "Pending"}


def test_finalizer_patch_touches_only_that_pod_and_that_list() -> None:
    pod = {"metadata": {"uid": "p1", "finalizers": ["kueue", "other"]}}
    ops = guards.finalizer_patch("p1", ["kueue", "other"], "kueue")
    assert jsonpatch.apply_patch(pod, ops)["metadata"]["finalizers"] == ["other"]
    for changed in ({"uid": "p2", "finalizers": ["kueue", "other"]}, {"uid": "p1", "finalizers": ["kueue"]}):
        with pytest.raises(jsonpatch.JsonPatchTestFailed):
            jsonpatch.apply_patch({"metadata": changed}, ops)


def test_controller_uid_and_pointer() -> None:
    refs = [{"uid": "a", "controller": False}, {"uid": "b", "controller": True}]
    assert guards.controller_uid({"ownerReferences": refs}) == "b"
    assert guards.controller_uid({"ownerReferences": [{"uid": "a"}]}) == "" == guards.controller_uid({})
    assert guards.pointer("data", "a/b~c") == "/data/a~1b~0c"
    with pytest.raises(ValueError, match="UID"):
        guards.uid_test("")
