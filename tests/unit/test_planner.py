"""planner.plan on plain data: one table row per decision, no cluster, no fakes, no event loop (issue 20).

Each row is an observation (the job body, its pods as PodViews, the time) and the memory; the plan is checked
for the phase it writes, the pods it creates and deletes, its events, the rank table and the next due time.
The async tests (test_reconcile.py) only prove that observe reads what plan needs and the executor applies it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from operator_jobs import ascend_job, job

from zoo_operator import admission, planner, podview
from zoo_operator import conditions as c
from zoo_operator.memory import JobMemory, Observation, Tail
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings

SETTINGS = Settings(status_interval_seconds=5.0, log_tail_lines=2)
T0 = 1_800_000_000.0
NAMES = ("demo-sched", "demo-worker-0", "demo-worker-1")


def pod(
    name: str,
    *,
    phase: str = "Running",
    exit_code: int | None = None,
    attempt: int = 0,
    message: str = "",
    annotation: dict[str, Any] | None = None,
    created: float = T0,
    node: str | None = "n1",
    **extra: Any,
) -> PodView:
    """A pod of the job as the pod index would show it."""
    index = None if name.endswith("-sched") else int(name.rsplit("-", 1)[1])
    return PodView(
        name=name,
        uid=f"uid-{name}",
        owner_uid="uid-1",
        role=c.ROLE_SCHEDULER if index is None else c.ROLE_WORKER,
        index=index,
        attempt=attempt,
        phase=phase,
        node=node,
        ip="10.244.0.5" if phase == "Running" else None,
        created=created,
        running=phase == "Running" and exit_code is None,
        exit_code=exit_code,
        terminated_reason=None if exit_code is None else ("Completed" if exit_code == 0 else "Error"),
        termination_message=message or None,
        device_annotation=json.dumps(annotation) if annotation else None,
        host_ip="10.0.0.2" if annotation else None,
        **extra,
    )


def running(*names: str, attempt: int = 0) -> tuple[PodView, ...]:
    return tuple(pod(n, attempt=attempt) for n in names)


def with_status(body: dict[str, Any], **st: Any) -> dict[str, Any]:
    return {**body, "status": st}


DONE = json.dumps(
    {"status": "succeeded", "metrics": {"top_1_accuracy": 0.7}, "checkpoint": "/zoo/checkpoint/x.ckpt"}
)
RUNNING_STATUS = {"phase": c.RUNNING, "startTime": podview.format_time(T0), "restarts": 0}


@dataclasses.dataclass
class Row:
    """One decision: what the pass sees and what its plan must hold."""

    name: str
    body: dict[str, Any]
    pods: tuple[PodView, ...] = ()
    now: float = T0 + 1
    memory: Callable[[], JobMemory] = JobMemory
    tails: dict[str, Tail] = dataclasses.field(default_factory=dict)
    phase: str | None = None  # status.phase written (None: no status write)
    reason: str | None = None
    create: tuple[str, ...] | None = None  # names of pods created
    delete: tuple[str, ...] | None = None
    events: tuple[str, ...] = ()  # reasons that must be among the plan's events
    delete_job: bool = False
    check: Callable[[planner.Plan], None] | None = None


def _quota() -> JobMemory:
    return JobMemory(
        refusal=admission.Refusal("demo-worker-1", 403, "exceeded quota: q, requested: cpu=1", T0)
    )


def _webhook() -> JobMemory:
    return JobMemory(refusal=admission.Refusal("demo-worker-1", 422, "denied by webhook", T0))


def _ranktable_after_restart(p: planner.Plan) -> None:
    """The stale-rank-table window: at once a table of the new attempt, initializing, none of the old devices."""
    assert p.config_map is not None
    data = p.config_map["data"]
    assert data[c.RANKTABLE_ATTEMPT_KEY] == "1"
    table = json.loads(data[c.RANKTABLE_FILE])
    assert table["status"] == "initializing" and table["server_list"] == []


def _table_completed(p: planner.Plan) -> None:
    assert p.config_map is not None
    table = json.loads(p.config_map["data"][c.RANKTABLE_FILE])
    assert table["status"] == "completed" and table["server_count"] == "1"
    assert p.memory.table is not None and p.memory.table.rank0 == "asc-worker-0"


def _due_backoff(p: planner.Plan) -> None:
    assert p.next_due == pytest.approx(T0 + 1 + 10.0)  # the first restart waits 10 s (policy.restart_backoff)


def _follow_rank0(p: planner.Plan) -> None:
    assert p.follow == "demo-worker-0" and p.next_due is not None


def _tails_folded(p: planner.Plan) -> None:
    summary = next(s for s in (p.status or {})["rankSummaries"] if s["pod"] == "demo-worker-1")
    assert summary["lastLines"] == ["step 2", "connection lost"]
    assert p.memory.logs["demo-worker-1"].final


def _ttl(p: planner.Plan) -> None:
    assert p.status is None and not p.create


def _quota_condition(p: planner.Plan) -> None:
    cond = next(x for x in (p.status or {})["conditions"] if x["type"] == c.PODS_ADMITTED)
    assert cond["status"] == "False" and cond["reason"] == c.REASON_QUOTA_EXCEEDED


def _invalid(p: planner.Plan) -> None:
    assert "spec.replicas" in str((p.status or {}).get("message")) and not p.create and not p.ensure


ASCEND_ANNOTATION = {
    "pod_name": "asc-worker-0",
    "server_id": "10.0.0.2",
    "devices": [{"device_id": "3", "device_ip": "192.168.1.3"}],
}

ROWS = [
    Row(
        "a new job creates its objects and every pod",
        job(),
        now=T0,
        phase=c.PENDING,
        reason=c.REASON_PODS_PENDING,
        create=NAMES,
        check=lambda p: [o["kind"] for o in p.ensure] == ["Service", "ConfigMap", "NetworkPolicy"],
    ),
    Row(
        "all ranks running",
        with_status(job(), phase=c.PENDING),
        running(*NAMES),
        phase=c.RUNNING,
        reason=c.REASON_ALL_RANKS_RUNNING,
        create=(),
        delete=(),
        check=_follow_rank0,
    ),
    Row(
        "a retryable failure restarts the whole gang",
        with_status(job(), **RUNNING_STATUS),
        (*running(*NAMES[:2]), pod(NAMES[2], phase="Failed", exit_code=75)),
        tails={"demo-worker-1": Tail("uid-demo-worker-1", "step 1\nstep 2\nconnection lost", True)},
        phase=c.RESTARTING,
        reason=c.REASON_GANG_RESTART,
        delete=NAMES,
        create=(),
        check=_tails_folded,
    ),
    Row(
        "a permanent exit fails the job at once",
        with_status(job(), **RUNNING_STATUS),
        (*running(*NAMES[:2]), pod(NAMES[2], phase="Failed", exit_code=64)),
        phase=c.FAILED,
        reason=c.REASON_PERMANENT_ERROR,
        create=(),
    ),
    Row(
        "backoffLimit spent fails the job",
        with_status(job(runPolicy={"backoffLimit": 1}), **{**RUNNING_STATUS, "restarts": 1}),
        (*running(*NAMES[:2], attempt=1), pod(NAMES[2], phase="Failed", exit_code=1, attempt=1)),
        phase=c.FAILED,
        reason=c.REASON_BACKOFF_LIMIT,
        create=(),
    ),
    Row(
        "a graceful stop restarts without spending backoffLimit",
        with_status(job(runPolicy={"backoffLimit": 0}), **RUNNING_STATUS),
        (*running(*NAMES[:2]), pod(NAMES[2], phase="Failed", exit_code=79)),
        phase=c.RESTARTING,
        reason=c.REASON_STOPPED,
        delete=NAMES,
        create=(),
    ),
    Row(
        "restart backoff: pods gone, waiting 10 s before recreating",
        with_status(
            job(),
            **{
                **RUNNING_STATUS,
                "phase": c.RESTARTING,
                "reason": c.REASON_RANK_FAILED,
                "restarts": 1,
                "restartTime": podview.format_time(T0 + 1),
            },
        ),
        now=T0 + 1,
        create=(),
        check=_due_backoff,
    ),
    Row(
        "after the backoff the next attempt is created",
        with_status(
            job(),
            **{
                **RUNNING_STATUS,
                "phase": c.RESTARTING,
                "reason": c.REASON_RANK_FAILED,
                "restarts": 1,
                "restartTime": podview.format_time(T0),
            },
        ),
        now=T0 + 11,
        create=NAMES,
        check=lambda p: {o["metadata"]["annotations"][c.ANNOTATION_ATTEMPT] for o in p.create} == {"1"},
    ),
    Row(
        "every rank succeeded",
        with_status(job(), **RUNNING_STATUS),
        (
            pod(NAMES[0], phase="Succeeded", exit_code=0),
            pod(NAMES[1], phase="Succeeded", exit_code=0, message=DONE),
            pod(NAMES[2], phase="Succeeded", exit_code=0, message=DONE),
        ),
        phase=c.SUCCEEDED,
        reason=c.REASON_SUCCEEDED,
        create=(),
        check=lambda p: (p.status or {})["result"]["top1"] == 0.7,
    ),
    Row(
        "suspend deletes the pods",
        with_status(job(runPolicy={"suspend": True}), **RUNNING_STATUS),
        running(*NAMES),
        phase=c.SUSPENDED,
        reason=c.REASON_SUSPENDED,
        delete=NAMES,
        create=(),
        check=lambda p: p.next_due is None,
    ),
    Row(
        "activeDeadlineSeconds passed",
        with_status(job(runPolicy={"activeDeadlineSeconds": 60}), **RUNNING_STATUS),
        running(*NAMES),
        now=T0 + 61,
        phase=c.FAILED,
        reason=c.REASON_DEADLINE,
        create=(),
    ),
    Row(
        "a finished job's running pods are cleaned (cleanPodPolicy Running)",
        with_status(job(), phase=c.FAILED, completionTime=podview.format_time(T0)),
        running(*NAMES),
        delete=NAMES,
        create=(),
    ),
    Row(
        "a pod never scheduled times out",
        with_status(job(runPolicy={"schedulingTimeoutSeconds": 30}), phase=c.PENDING),
        tuple(pod(n, phase="Pending", node=None) for n in NAMES),
        now=T0 + 40,
        phase=c.FAILED,
        reason=c.REASON_SCHEDULING_TIMEOUT,
    ),
    Row(
        "TTL after finishing deletes the job",
        with_status(
            job(runPolicy={"ttlSecondsAfterFinished": 5}),
            phase=c.SUCCEEDED,
            completionTime=podview.format_time(T0),
        ),
        now=T0 + 6,
        delete_job=True,
        events=(c.REASON_TTL_EXPIRED,),
        check=_ttl,
    ),
    Row(
        "a quota refusal waits with a condition",
        with_status(job(), phase=c.PENDING),
        running(*NAMES[:2]),
        memory=_quota,
        create=("demo-worker-1",),
        check=_quota_condition,
    ),
    Row(
        "a webhook refusal fails the job and deletes its pods",
        with_status(job(), phase=c.PENDING),
        running(*NAMES[:2]),
        memory=_webhook,
        phase=c.FAILED,
        reason=c.REASON_ADMISSION_REFUSED,
        delete=NAMES[:2],
        create=(),
    ),
    Row(
        "the rank table completes when every device is known",
        with_status(ascend_job(replicas=1), phase=c.PENDING),
        (pod("asc-worker-0", annotation=ASCEND_ANNOTATION),),
        events=(c.REASON_RANK_TABLE_COMPLETED,),
        phase=c.RUNNING,
        check=_table_completed,
    ),
    Row(
        "stale-table window: a restart writes the new attempt's empty table at once",
        with_status(ascend_job(replicas=1), **RUNNING_STATUS),
        (pod("asc-worker-0", phase="Failed", exit_code=75, annotation=ASCEND_ANNOTATION),),
        memory=lambda: JobMemory(rank_table_data={"hccl.json": "{}", "attempt": "0"}),
        phase=c.RESTARTING,
        delete=("asc-worker-0",),
        check=_ranktable_after_restart,
    ),
    Row(
        "an invalid spec writes InvalidSpec and creates nothing",
        job(replicas=0),
        now=T0,
        phase=c.FAILED,
        reason=c.REASON_INVALID_SPEC,
        create=(),
        check=_invalid,
    ),
    Row(
        "a spec change of a running gang restarts it",
        with_status(
            {**job(replicas=3), "metadata": {**job()["metadata"], "generation": 2}},
            **{**RUNNING_STATUS, "observedGeneration": 1},
        ),
        tuple(dataclasses.replace(p, spec_hash="old") for p in running(*NAMES)),
        phase=c.RESTARTING,
        reason=c.REASON_SPEC_CHANGED,
        delete=NAMES,
    ),
    # Issue 23, pod-level recovery (policy.replace_lost_pod).
    Row(
        "a lost worker of a dynamic gang with in-place restarts is recreated alone, in the same attempt",
        with_status(job(runPolicy={"processRestarts": 3}), **RUNNING_STATUS),
        running(*NAMES[:2]),
        phase=c.RUNNING,
        reason=c.REASON_POD_REPLACED,
        create=("demo-worker-1",),
        delete=(),
        check=lambda p: p.create[0]["metadata"]["annotations"][c.ANNOTATION_ATTEMPT] == "0",
    ),
    Row(
        "the lost worker still terminates: its replacement waits for the name, the gang stays",
        with_status(job(runPolicy={"processRestarts": 3}), **RUNNING_STATUS),
        (*running(*NAMES[:2]), dataclasses.replace(pod(NAMES[2]), deleting=True)),
        phase=c.RUNNING,
        reason=c.REASON_POD_REPLACED,
        create=(),
        delete=(),
    ),
    Row(
        "a lost scheduler restarts the whole gang (the survivors resolved its old IP)",
        with_status(job(runPolicy={"processRestarts": 3}), **RUNNING_STATUS),
        running(*NAMES[1:]),
        phase=c.RESTARTING,
        reason=c.REASON_POD_LOST,
        delete=NAMES[1:],
        create=(),
    ),
    Row(
        "a lost worker with in-place restarts off restarts the whole gang",
        with_status(job(runPolicy={"processRestarts": 0}), **RUNNING_STATUS),
        running(*NAMES[:2]),
        phase=c.RESTARTING,
        reason=c.REASON_POD_LOST,
        delete=NAMES[:2],
        create=(),
    ),
    Row(
        "a lost rank-table worker restarts the whole gang (hccl.json would change under the survivors)",
        with_status(ascend_job(replicas=2, runPolicy={"processRestarts": 3}), **RUNNING_STATUS),
        running("asc-worker-0"),
        phase=c.RESTARTING,
        reason=c.REASON_POD_LOST,
        delete=("asc-worker-0",),
        create=(),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_plan(row: Row) -> None:
    obs = Observation(body=row.body, pods=row.pods, now=row.now, tails=row.tails)
    mem = row.memory()
    before = dataclasses.replace(mem)
    p = planner.plan(obs, mem, SETTINGS)
    assert mem == before, "plan() changed the memory: its changes belong in Plan.memory"
    if row.phase is not None:
        assert p.status is not None, "no status written"
        assert p.status["phase"] == row.phase, p.status.get("message")
    if row.reason is not None:
        assert p.status is not None and p.status["reason"] == row.reason, p.status and p.status.get("message")
    if row.create is not None:
        assert tuple(o["metadata"]["name"] for o in p.create) == row.create
    if row.delete is not None:
        assert tuple(sorted(p.delete)) == tuple(sorted(row.delete))
    assert set(row.events) <= {e[1] for e in p.events}, p.events
    assert p.delete_job == row.delete_job
    if row.check is not None:
        assert row.check(p) is not False


def test_plan_is_deterministic() -> None:
    """The same observation and memory give the same plan (no clock, no randomness it does not receive)."""
    obs = Observation(body=job(), pods=(), now=T0)
    first, second = planner.plan(obs, JobMemory(), SETTINGS), planner.plan(obs, JobMemory(), SETTINGS)
    assert first == second


def test_first_pass_ensures_the_config_map_holding_the_table_and_splits_the_waves() -> None:
    """Issue 25: the launch ConfigMap is created holding this pass's (initializing) table, the very object of
    Plan.config_map; only the PodGroup and NetworkPolicy go before the pods."""
    body = ascend_job(replicas=2, scheduling={"gang": True})
    seen = Observation(body=body, pods=(), now=T0, pod_group_served=True)
    out = planner.plan(seen, JobMemory(uid="uid-1"), SETTINGS)
    maps = [o for o in out.ensure if o["kind"] == "ConfigMap"]
    assert len(maps) == 1 and maps[0] is out.config_map
    assert json.loads(maps[0]["data"]["hccl.json"])["status"] == "initializing"
    first, along = planner.ensure_waves(out.ensure)
    assert sorted(o["kind"] for o in first) == ["NetworkPolicy", "PodGroup"]
    assert sorted(o["kind"] for o in along) == ["ConfigMap", "Service"]
    assert [o["kind"] for o in out.create] == ["Pod", "Pod"]


@pytest.mark.parametrize(
    ("kinds", "first", "along"),
    [
        ((), (), ()),
        (("Service", "ConfigMap"), (), ("Service", "ConfigMap")),
        (("PodGroup", "Service", "NetworkPolicy"), ("PodGroup", "NetworkPolicy"), ("Service",)),
        (("ConfigMap", "ResourceClaimTemplate"), ("ResourceClaimTemplate",), ("ConfigMap",)),
    ],
)
def test_ensure_waves(kinds: tuple[str, ...], first: tuple[str, ...], along: tuple[str, ...]) -> None:
    objs = [{"kind": k, "metadata": {"name": "x"}} for k in kinds]
    a, b = planner.ensure_waves(objs)
    assert (tuple(o["kind"] for o in a), tuple(o["kind"] for o in b)) == (first, along)


def test_with_table_replaces_only_the_named_config_map() -> None:
    table = {"kind": "ConfigMap", "metadata": {"name": "j-ranktable"}, "data": {"hccl.json": "{}"}}
    other = {"kind": "ConfigMap", "metadata": {"name": "j-launch"}, "data": {}}
    svc = {"kind": "Service", "metadata": {"name": "j-ranktable"}}
    empty = {"kind": "ConfigMap", "metadata": {"name": "j-ranktable"}, "data": {}}
    assert planner.with_table([svc, empty, other], table) == [svc, table, other]
    assert planner.with_table([svc, empty], None) == [svc, empty]


def test_pods_created_but_not_yet_in_the_index_are_not_created_again() -> None:
    """Issue 25: a pass that runs before the pod index shows the pods the last pass created does not create them
    again (each would be a 409); a pod unseen for EXPECT_SECONDS counts as gone and is created again."""
    body = ascend_job(replicas=4)
    mem = JobMemory(uid="uid-1")
    first = planner.plan(Observation(body=body, pods=(), now=T0), mem, SETTINGS)
    names = [o["metadata"]["name"] for o in first.create]
    assert first.memory.expected == dict.fromkeys(names, T0)
    mem = dataclasses.replace(mem, expected=dict(first.memory.expected or {}), ensured_uid="uid-1")
    seen = (pod(names[0], phase="Pending"),)
    lagging = planner.plan(Observation(body=body, pods=seen, now=T0 + 1), mem, SETTINGS)
    assert lagging.create == []
    assert lagging.memory.expected == dict.fromkeys(names[1:], T0)  # the one seen is no longer expected
    late = T0 + planner.EXPECT_SECONDS
    stale = planner.plan(Observation(body=body, pods=seen, now=late), mem, SETTINGS)
    assert [o["metadata"]["name"] for o in stale.create] == names[1:]
    assert stale.memory.expected == dict.fromkeys(names[1:], late)


def test_expected_pods() -> None:
    made = [{"metadata": {"name": "j-worker-2"}}]
    expected = {"j-worker-0": T0, "j-worker-1": T0 - planner.EXPECT_SECONDS}
    assert planner.expected_pods(expected, (pod("j-worker-0"),), made, T0) == {"j-worker-2": T0}
    assert planner.expected_pods(expected, (), (), T0) == {"j-worker-0": T0}
