"""Run-policy decisions from plain pod views."""

from __future__ import annotations

import dataclasses

import pytest
from operator_jobs import ascend_job, job

from zoo_operator import conditions as c
from zoo_operator import policy, spec
from zoo_operator.podview import PodView
from zoo_operator.policy import JobState
from zoo_operator.settings import Settings

NOW = 10_000.0


def parse(body: dict) -> spec.JobSpec:
    return spec.parse(body, Settings())


def workers(n: int, attempt: int = 0, **state: object) -> list[PodView]:
    return [
        PodView(
            name=f"asc-worker-{i}",
            index=i,
            attempt=attempt,
            created=NOW - 10,
            node="n1",
            phase="Running",
            running=True,
            **state,
        )
        for i in range(n)
    ]


def ended(pod: PodView, code: int, message: str | None = None) -> PodView:
    return dataclasses.replace(
        pod,
        running=False,
        exit_code=code,
        phase="Succeeded" if code == 0 else "Failed",
        termination_message=message,
    )


JOB = parse(ascend_job(replicas=2, runPolicy={"backoffLimit": 2}))


def test_new_job_creates_every_pod() -> None:
    d = policy.decide(JOB, JobState(), [], NOW)
    assert d.phase == c.PENDING and d.create == (0, 1) and d.delete == ()
    dyn = policy.decide(parse(job()), JobState(), [], NOW)
    assert dyn.create == (None, 0, 1)


def test_only_missing_pods_are_created() -> None:
    d = policy.decide(JOB, JobState(c.PENDING), workers(1), NOW)
    assert d.create == (1,)


def test_all_running() -> None:
    d = policy.decide(JOB, JobState(c.PENDING), workers(2), NOW)
    assert d.phase == c.RUNNING and d.create == () and d.delete == ()


def test_retryable_failure_restarts_the_whole_gang() -> None:
    pods = workers(2, attempt=1)
    pods[1] = ended(
        pods[1], 75, '{"status": "failed", "reason": "PeerLost", "message": "rank 0 gone", "retryable": true}'
    )
    d = policy.decide(JOB, JobState(c.RUNNING, restarts=1), pods, NOW)
    assert d.phase == c.RESTARTING and d.restart
    assert set(d.delete) == {"asc-worker-0", "asc-worker-1"}
    assert "PeerLost: rank 0 gone" in d.message and "restart 2 of 2" in d.message


def test_backoff_limit_exhausted_fails() -> None:
    pods = [ended(workers(1, attempt=2)[0], 1), workers(2, attempt=2)[1]]
    d = policy.decide(JOB, JobState(c.RUNNING, restarts=2), pods, NOW)
    assert d.phase == c.FAILED and d.reason == c.REASON_BACKOFF_LIMIT and not d.restart


@pytest.mark.parametrize("code", [64, 66])
def test_permanent_exit_codes_fail_at_once(code: int) -> None:
    pods = [ended(workers(1)[0], code), workers(2)[1]]
    d = policy.decide(JOB, JobState(c.RUNNING), pods, NOW)
    assert d.phase == c.FAILED and d.reason == c.REASON_PERMANENT_ERROR and f"exit code {code}" in d.message


def test_evicted_pod_without_exit_code_is_retryable() -> None:
    pods = workers(2)
    pods[0] = dataclasses.replace(pods[0], running=False, phase="Failed")
    assert policy.decide(JOB, JobState(c.RUNNING), pods, NOW).restart


def test_stale_attempt_pods_are_deleted_and_block_creation() -> None:
    old = workers(2, attempt=0)
    d = policy.decide(JOB, JobState(c.RESTARTING, restarts=1), old, NOW)
    assert d.phase == c.RESTARTING and set(d.delete) == {"asc-worker-0", "asc-worker-1"} and d.create == ()
    terminating = [dataclasses.replace(p, deleting=True) for p in old]
    d = policy.decide(JOB, JobState(c.RESTARTING, restarts=1), terminating, NOW)
    assert d.create == () and d.delete == ()  # names still held
    d = policy.decide(JOB, JobState(c.RESTARTING, restarts=1, restart_time=NOW - 9), [], NOW)
    assert d.phase == c.RESTARTING and d.create == ()  # backoff: 10 s for the first restart
    d = policy.decide(JOB, JobState(c.RESTARTING, restarts=1, restart_time=NOW - 10), [], NOW)
    assert d.phase == c.RESTARTING and d.create == (0, 1)
    d = policy.decide(JOB, JobState(c.RESTARTING, restarts=1), workers(2, attempt=1), NOW)
    assert d.phase == c.RUNNING


def test_restart_backoff_doubles_and_is_capped() -> None:
    assert [policy.restart_backoff(n) for n in range(6)] == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0]
    assert policy.restart_backoff(20) == policy.RESTART_BACKOFF_MAX_SECONDS


def test_success_when_every_worker_exits_zero() -> None:
    pods = [ended(p, 0) for p in workers(2)]
    d = policy.decide(JOB, JobState(c.RUNNING), pods, NOW)
    assert d.phase == c.SUCCEEDED
    partial = [pods[0], workers(2)[1]]
    assert policy.decide(JOB, JobState(c.RUNNING), partial, NOW).phase == c.RUNNING


def test_active_deadline() -> None:
    js = parse(ascend_job(replicas=2, runPolicy={"activeDeadlineSeconds": 60}))
    assert policy.decide(js, JobState(c.RUNNING, start_time=NOW - 59), workers(2), NOW).phase == c.RUNNING
    d = policy.decide(js, JobState(c.RUNNING, start_time=NOW - 60), workers(2), NOW)
    assert d.phase == c.FAILED and d.reason == c.REASON_DEADLINE


def test_scheduling_timeout_and_image_pull() -> None:
    js = parse(ascend_job(replicas=1, runPolicy={"schedulingTimeoutSeconds": 30}))
    pending = PodView(name="asc-worker-0", index=0, created=NOW - 31, unschedulable="0/3 nodes are available")
    d = policy.decide(js, JobState(c.PENDING), [pending], NOW)
    assert d.reason == c.REASON_SCHEDULING_TIMEOUT and "0/3 nodes are available" in d.message
    assert "schedulingTimeoutSeconds=30" in d.message
    young = dataclasses.replace(pending, created=NOW - 29)
    assert policy.decide(js, JobState(c.PENDING), [young], NOW).phase == c.PENDING
    pulling = PodView(
        name="asc-worker-0",
        index=0,
        created=NOW - 31,
        node="n1",
        waiting_reason="ImagePullBackOff",
        waiting_message="image not found",
    )
    d = policy.decide(js, JobState(c.PENDING), [pulling], NOW)
    assert d.phase == c.FAILED and d.reason == c.REASON_IMAGE_PULL and "image not found" in d.message
    # Scheduled, and ContainerCreating past the timeout (issue 11: nothing stuck forever): failed with the reason.
    creating = dataclasses.replace(pulling, waiting_reason="ContainerCreating", waiting_message=None)
    d = policy.decide(js, JobState(c.PENDING), [creating], NOW)
    assert (d.phase, d.reason) == (c.FAILED, c.REASON_POD_START_FAILED) and "ContainerCreating" in d.message
    assert (
        policy.decide(js, JobState(c.PENDING), [dataclasses.replace(creating, created=NOW - 29)], NOW).phase
        == c.PENDING
    )


def test_a_pod_that_cannot_start_says_why_at_once_in_user_terms_then_fails() -> None:
    js = parse(
        ascend_job(
            replicas=2,
            runPolicy={"schedulingTimeoutSeconds": 60},
            dataset={
                "volume": {"hostPath": {"path": "/data/imgnet", "type": "Directory"}},
                "trainPath": "train",
                "evalPath": "validation",
                "numClasses": 10,
            },
        )
    )
    mount = (
        'FailedMount: MountVolume.SetUp failed for volume "zoo-data" : hostPath /data/imgnet doesn\'t exist'
    )
    stuck = PodView(
        name="asc-worker-1",
        index=1,
        created=NOW - 20,
        node="n1",
        waiting_reason="ContainerCreating",
        waiting_message=mount,
    )
    d = policy.decide(js, JobState(c.PENDING), [workers(1)[0], stuck], NOW)
    assert (d.phase, d.reason) == (c.PENDING, c.REASON_POD_START_BLOCKED)
    assert (
        'volume "zoo-data" (spec.dataset.volume)' in d.message and "/data/imgnet doesn't exist" in d.message
    )
    assert "schedulingTimeoutSeconds=60" in d.message
    late = policy.decide(
        js, JobState(c.PENDING), [workers(1)[0], dataclasses.replace(stuck, created=NOW - 61)], NOW
    )
    assert (late.phase, late.reason) == (c.FAILED, c.REASON_POD_START_FAILED) and "hostPath" in late.message
    secret = dataclasses.replace(
        stuck, waiting_reason="CreateContainerConfigError", waiting_message='secret "db" not found'
    )
    d = policy.decide(js, JobState(c.PENDING), [workers(1)[0], secret], NOW)
    assert (
        d.reason == c.REASON_POD_START_BLOCKED
        and 'CreateContainerConfigError: secret "db" not found' in d.message
    )


def test_messages_name_what_the_user_wrote() -> None:
    js = parse(
        ascend_job(
            replicas=1,
            dataset={
                "volume": {"emptyDir": {}},
                "trainPath": "imagenet/train",
                "evalPath": "validation",
                "numClasses": 10,
            },
        )
    )
    dead = ended(
        workers(1)[0],
        66,
        '{"status": "failed", "reason": "DatasetMissing", '
        '"message": "/zoo/data/validation does not exist", "retryable": false}',
    )
    d = policy.decide(js, JobState(c.RUNNING), [dead], NOW)
    assert "spec.dataset.evalPath: validation (/zoo/data/validation in the pod) does not exist" in d.message
    assert policy.in_user_terms(js, "/zoo/data/imagenet/training") == "/zoo/data/imagenet/training"


def test_suspend_deletes_pods() -> None:
    js = parse(ascend_job(replicas=2, runPolicy={"suspend": True}))
    d = policy.decide(js, JobState(c.RUNNING), workers(2), NOW)
    assert d.phase == c.SUSPENDED and len(d.delete) == 2 and d.create == ()
    resumed = policy.decide(JOB, JobState(c.SUSPENDED), [], NOW)
    assert resumed.phase == c.PENDING and resumed.create == (0, 1)


@pytest.mark.parametrize(
    ("clean", "expected"),
    [("All", {"asc-worker-0", "asc-worker-1"}), ("Running", {"asc-worker-1"}), ("None", set())],
)
def test_clean_pod_policy(clean: str, expected: set[str]) -> None:
    js = parse(ascend_job(replicas=2, runPolicy={"cleanPodPolicy": clean}))
    pods = [ended(workers(2)[0], 64), workers(2)[1]]
    d = policy.decide(js, JobState(c.FAILED, completion_time=NOW), pods, NOW)
    assert d.phase == c.FAILED and set(d.delete) == expected and not d.delete_job


def test_ttl_after_finished() -> None:
    js = parse(ascend_job(replicas=1, runPolicy={"ttlSecondsAfterFinished": 100}))
    assert not policy.decide(js, JobState(c.SUCCEEDED, completion_time=NOW - 99), [], NOW).delete_job
    assert policy.decide(js, JobState(c.SUCCEEDED, completion_time=NOW - 100), [], NOW).delete_job
    assert not policy.decide(JOB, JobState(c.SUCCEEDED, completion_time=0.0), [], NOW).delete_job


def test_workers_beyond_replicas_are_deleted() -> None:
    d = policy.decide(JOB, JobState(c.RUNNING), workers(3), NOW)
    assert d.delete == ("asc-worker-2",)


def test_state_from_status_tolerates_garbage() -> None:
    assert policy.state_from_status({"restarts": "x", "startTime": 5}) == JobState()
    s = policy.state_from_status({"phase": "Running", "restarts": 2, "startTime": "2026-01-01T00:00:00Z"})
    assert s.restarts == 2 and s.start_time == 1767225600.0


# Issue 11: spec changes and pods lost from a running gang.
def hashed(js: spec.JobSpec, pods: list[PodView]) -> list[PodView]:
    return [dataclasses.replace(p, spec_hash=spec.gang_hash(js)) for p in pods]


def test_replicas_change_restarts_the_whole_gang_never_adds_a_pod() -> None:
    old = parse(ascend_job(replicas=2))
    new = parse(ascend_job(replicas=4))
    d = policy.decide(new, JobState(c.RUNNING, observed_generation=1), hashed(old, workers(2)), NOW)
    assert d.phase == c.RESTARTING and d.reason == c.REASON_SPEC_CHANGED
    assert d.create == () and set(d.delete) == {"asc-worker-0", "asc-worker-1"}
    assert not d.restart, "a deliberate spec change does not use up backoffLimit"
    # Once the old pods are gone, the new gang is created whole.
    after = policy.decide(new, JobState(c.RESTARTING, reason=c.REASON_SPEC_CHANGED), [], NOW)
    assert after.create == (0, 1, 2, 3)


def test_run_policy_changes_apply_live() -> None:
    old = parse(ascend_job(replicas=2))
    new = parse(ascend_job(replicas=2, runPolicy={"backoffLimit": 7, "activeDeadlineSeconds": 9999}))
    assert spec.gang_hash(old) == spec.gang_hash(new)
    d = policy.decide(new, JobState(c.RUNNING), hashed(old, workers(2)), NOW)
    assert d.phase == c.RUNNING and d.delete == ()


def test_hyperparameter_change_is_a_gang_change() -> None:
    old = parse(ascend_job(replicas=2))
    new = parse(ascend_job(replicas=2, hyperparameters={"epochs": 5}))
    assert (
        policy.decide(new, JobState(c.RUNNING), hashed(old, workers(2)), NOW).reason == c.REASON_SPEC_CHANGED
    )


def test_deleted_worker_of_running_gang_restarts_the_whole_gang() -> None:
    pods = workers(2)[:1]  # worker 1 was deleted by someone
    d = policy.decide(JOB, JobState(c.RUNNING), pods, NOW)
    assert d.phase == c.RESTARTING and d.reason == c.REASON_POD_LOST and d.restart
    assert d.create == () and d.delete == ("asc-worker-0",)
    assert "asc-worker-1" in d.message and "restart 1 of 2" in d.message
    terminating = [pods[0], dataclasses.replace(workers(2)[1], deleting=True)]
    assert policy.decide(JOB, JobState(c.RUNNING), terminating, NOW).reason == c.REASON_POD_LOST
    no_left = policy.decide(JOB, JobState(c.RUNNING, restarts=2), workers(2, attempt=2)[:1], NOW)
    assert no_left.phase == c.FAILED and no_left.reason == c.REASON_BACKOFF_LIMIT


def test_evicted_pod_stops_the_gang_without_spending_a_restart() -> None:
    # Kueue stops a pod group one pod at a time (condition, then delete): the first evicted pod stops the gang.
    pods = workers(2)
    pods[1] = dataclasses.replace(pods[1], deleting=True, evicted_by="Kueue: WorkloadEvicted")
    no_restarts = parse(ascend_job(replicas=2, runPolicy={"backoffLimit": 0}))
    d = policy.decide(no_restarts, JobState(c.RUNNING), pods, NOW)
    assert (d.phase, d.reason, d.restart, d.stopped) == (c.RESTARTING, c.REASON_EVICTED, True, True)
    assert d.delete == ("asc-worker-0",) and "asc-worker-1 evicted (Kueue: WorkloadEvicted)" in d.message
    # Next pass: the old attempt's pods are still terminating; nothing is created and the reason stays.
    again = policy.decide(
        no_restarts,
        JobState(c.RESTARTING, c.REASON_EVICTED, restarts=1, stopped_restarts=1, restart_time=NOW),
        pods,
        NOW + 1,
    )
    assert (again.phase, again.reason, again.create) == (c.RESTARTING, c.REASON_EVICTED, ())
    # Once they are gone the whole new gang is created.
    gone = policy.decide(
        no_restarts,
        JobState(c.RESTARTING, c.REASON_EVICTED, restarts=1, stopped_restarts=1, restart_time=NOW - 600),
        [],
        NOW,
    )
    assert gone.create == (0, 1) and gone.reason == c.REASON_EVICTED
    # The scheduler's preemption or a drain (DisruptionTarget) on a running, not yet deleted pod: the same.
    drained = [
        dataclasses.replace(workers(2)[0], evicted_by="Kubernetes: EvictionByEvictionAPI"),
        workers(2)[1],
    ]
    d = policy.decide(no_restarts, JobState(c.RUNNING), drained, NOW)
    assert d.reason == c.REASON_EVICTED and set(d.delete) == {"asc-worker-0", "asc-worker-1"}
    # A pod of an older attempt that was evicted does not stop the new one.
    old = dataclasses.replace(workers(1)[0], name="old", deleting=True, evicted_by="Kueue: WorkloadEvicted")
    assert (
        policy.decide(no_restarts, JobState(c.RUNNING, restarts=1), [old, *workers(2, attempt=1)], NOW).phase
        == c.RUNNING
    )


def test_missing_pods_of_a_pending_gang_are_still_created() -> None:
    assert policy.decide(JOB, JobState(c.PENDING), workers(1), NOW).create == (1,)


def test_edit_of_a_finished_job_is_recorded_not_acted_on() -> None:
    js = parse(ascend_job(replicas=2))
    js = dataclasses.replace(js, generation=3)
    done = JobState(
        c.SUCCEEDED, reason=c.REASON_SUCCEEDED, message="ok", completion_time=NOW - 5, observed_generation=2
    )
    d = policy.decide(js, done, [], NOW)
    assert d.phase == c.SUCCEEDED and d.create == () and not d.restart
    assert [(k, r) for k, r, _ in d.events] == [("Warning", c.REASON_SPEC_CHANGE_IGNORED)]
    assert "generation 2 -> 3" in d.events[0][2]
    same = dataclasses.replace(done, observed_generation=3)
    assert policy.decide(js, same, [], NOW).events == ()


def test_no_pod_of_a_new_gang_while_the_old_one_terminates() -> None:
    new = parse(ascend_job(replicas=3))
    terminating = [dataclasses.replace(p, deleting=True) for p in workers(2)]
    d = policy.decide(new, JobState(c.RESTARTING, reason=c.REASON_SPEC_CHANGED), terminating, NOW)
    assert d.create == (), "asc-worker-2's name is free, but the old gang is not gone yet"
    assert policy.decide(new, JobState(c.RESTARTING, reason=c.REASON_SPEC_CHANGED), [], NOW).create == (
        0,
        1,
        2,
    )


def test_the_schedulers_reason_is_in_the_message_at_once() -> None:
    js = parse(ascend_job(replicas=1, runPolicy={"schedulingTimeoutSeconds": 300}))
    waiting = PodView(
        name="asc-worker-0",
        index=0,
        created=NOW - 5,
        unschedulable="0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
    )
    d = policy.decide(js, JobState(c.PENDING), [waiting], NOW)
    assert (d.phase, d.reason) == (c.PENDING, c.REASON_PODS_PENDING)
    assert (
        "unbound immediate PersistentVolumeClaims" in d.message
        and "schedulingTimeoutSeconds=300" in d.message
    )


def test_a_new_default_image_is_not_a_spec_change() -> None:
    """An operator upgrade (new default image) must not restart every running job."""
    old = spec.parse(ascend_job(replicas=2), Settings(image_ascend="zoo-operator/workload-ascend:1"))
    new = spec.parse(ascend_job(replicas=2), Settings(image_ascend="zoo-operator/workload-ascend:2"))
    assert spec.gang_hash(old) == spec.gang_hash(new)
    pinned = parse(ascend_job(replicas=2, image="registry/ascend:3"))
    assert spec.gang_hash(pinned) != spec.gang_hash(old)


def test_queued_pods_are_not_failed_by_the_scheduling_timeout() -> None:
    js = parse(ascend_job(replicas=2, runPolicy={"schedulingTimeoutSeconds": 20}))
    gated = [PodView(name=f"asc-worker-{i}", index=i, created=NOW - 3600, queued=True) for i in range(2)]
    d = policy.decide(js, JobState(c.PENDING), gated, NOW)
    assert d.phase == c.PENDING and d.create == () and d.reason == c.REASON_PODS_PENDING
    # Admitted (gate removed) but still unscheduled past the limit: the timeout applies again.
    admitted = [dataclasses.replace(p, queued=False, unschedulable="0/1 nodes") for p in gated]
    assert policy.decide(js, JobState(c.PENDING), admitted, NOW).reason == c.REASON_SCHEDULING_TIMEOUT


def test_pods_deleted_by_a_preemption_are_recreated_without_a_restart() -> None:
    # Kueue stops a preempted pod group by deleting its pods (pkg/controller/jobs/pod/pod_controller.go, Stop):
    # terminating pods are neither failures nor reused; once gone they are created again (and gated again).
    js = parse(ascend_job(replicas=2, runPolicy={"backoffLimit": 0}))
    terminating = [ended(dataclasses.replace(p, deleting=True), 143) for p in workers(2)]
    d = policy.decide(js, JobState(c.RUNNING), terminating, NOW)
    assert d.phase == c.PENDING and d.create == () and not d.restart
    d = policy.decide(js, JobState(c.RUNNING), [], NOW)
    assert d.phase == c.PENDING and d.create == (0, 1) and not d.restart


def test_kueue_finalizer_released_only_from_deleted_pods_that_ended() -> None:
    running, ended_pod, gated, other = (
        PodView(name="a", deleting=True, kueue_finalizer=True, node="n1", running=True),
        PodView(name="b", deleting=True, kueue_finalizer=True, node="n1", exit_code=143, phase="Failed"),
        PodView(name="c", deleting=True, kueue_finalizer=True, queued=True),
        PodView(name="d", deleting=False, kueue_finalizer=True, node="n1", exit_code=0, phase="Succeeded"),
    )
    assert policy.kueue_release([running, ended_pod, gated, other]) == ("b", "c")
    assert policy.kueue_release([dataclasses.replace(ended_pod, kueue_finalizer=False)]) == ()


def test_a_pod_admitted_after_a_long_gate_starts_its_timeout_when_admitted() -> None:
    # Kueue kept the pod gated for an hour; it was scheduled 5 s ago and is still creating its container.
    js = parse(ascend_job(replicas=1, runPolicy={"schedulingTimeoutSeconds": 20}))
    admitted = PodView(
        name="asc-worker-0",
        index=0,
        created=NOW - 3600,
        scheduling_since=NOW - 5,
        node="n1",
        waiting_reason="ContainerCreating",
    )
    assert policy.decide(js, JobState(c.PENDING), [admitted], NOW).phase == c.PENDING
    late = dataclasses.replace(admitted, scheduling_since=NOW - 30)
    assert policy.decide(js, JobState(c.PENDING), [late], NOW).reason == c.REASON_POD_START_FAILED
