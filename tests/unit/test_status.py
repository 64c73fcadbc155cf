"""Status computation: conditions, counts, summaries, times, and the write-only-on-change patch."""

from __future__ import annotations

from zoo_operator import conditions as c
from zoo_operator import status
from zoo_operator.podview import PodView, format_time
from zoo_operator.policy import Decision, JobState

T0 = 1_800_000_000.0


def compute(
    decision: Decision,
    prev: dict | None = None,
    pods: list[PodView] | None = None,
    state: JobState | None = None,
    now: float = T0,
    **kw: object,
) -> dict:
    args = {"rank_table": None, "progress": {}, "lines": {}, "result": None, "created": True}
    args.update(kw)
    return status.compute(
        prev=prev or {},
        state=state or JobState(),
        decision=decision,
        pods=pods or [],
        replicas=2,
        generation=3,
        now=now,
        **args,
    )


def cond(st: dict, ctype: str) -> dict | None:
    return next((x for x in st["conditions"] if x["type"] == ctype), None)


def test_first_pass_sets_created_and_start_time() -> None:
    st = compute(Decision(c.PENDING, c.REASON_PODS_PENDING, "2 of 2 pods not running yet"))
    assert st["phase"] == c.PENDING and st["observedGeneration"] == 3 and st["restarts"] == 0
    assert cond(st, c.CREATED)["status"] == "True"
    assert cond(st, c.RUNNING_CONDITION) is None  # never set, so absent
    assert st["startTime"] == format_time(T0)


def test_transition_times_move_only_when_status_flips() -> None:
    running = compute(Decision(c.RUNNING, c.REASON_ALL_RANKS_RUNNING, "ok"))
    later = compute(Decision(c.RUNNING, c.REASON_ALL_RANKS_RUNNING, "ok"), prev=running, now=T0 + 50)
    assert cond(later, c.RUNNING_CONDITION)["lastTransitionTime"] == format_time(T0)
    done = compute(Decision(c.SUCCEEDED, c.REASON_SUCCEEDED, "all"), prev=later, now=T0 + 90)
    assert cond(done, c.RUNNING_CONDITION)["status"] == "False"
    assert cond(done, c.RUNNING_CONDITION)["lastTransitionTime"] == format_time(T0 + 90)
    assert cond(done, c.SUCCEEDED_CONDITION)["status"] == "True"
    assert done["completionTime"] == format_time(T0 + 90) and done["startTime"] == format_time(T0)


def test_restart_counts_and_rank_table() -> None:
    info = status.RankTableInfo("j-ranktable", "1.0", "initializing", 1)
    st = compute(
        Decision(c.RESTARTING, c.REASON_GANG_RESTART, "x", restart=True),
        state=JobState(c.RUNNING, restarts=1),
        rank_table=info,
    )
    assert st["restarts"] == 2 and st["restartTime"] == format_time(T0)
    assert st["rankTable"] == {
        "configMap": "j-ranktable",
        "version": "1.0",
        "status": "initializing",
        "devicesKnown": 1,
    }
    assert cond(st, c.RANK_TABLE_READY)["status"] == "False"
    assert cond(st, c.RANK_TABLE_READY)["reason"] == c.REASON_WAITING_FOR_DEVICES


def test_rank_counts() -> None:
    pods = [
        PodView(name="a", index=0, running=True, phase="Running"),
        PodView(name="b", index=1, exit_code=0, phase="Succeeded"),
        PodView(name="c", index=2, exit_code=75, phase="Failed"),
        PodView(name="d", index=3),
        PodView(name="s", role=c.ROLE_SCHEDULER, running=True),
        PodView(name="e", index=4, deleting=True),
    ]
    assert status.rank_counts(pods, 5) == {"total": 5, "pending": 1, "active": 1, "succeeded": 1, "failed": 1}


def test_summaries_keep_lines_of_deleted_pods() -> None:
    prev = [{"rank": 0, "pod": "j-worker-0", "phase": "Failed", "exitCode": 75, "lastLines": ["boom"]}]
    pods = [PodView(name="j-worker-1", index=1, node="n2", phase="Running", running=True)]
    out = status.rank_summaries(pods, {"j-worker-1": ["step 3"]}, prev)
    assert out == [
        prev[0],
        {"rank": 1, "pod": "j-worker-1", "phase": "Running", "node": "n2", "lastLines": ["step 3"]},
    ]


def test_server_pod_summary_names_its_first_rank_and_how_many() -> None:
    # Two server pods of 8 ranks each (issue 21): the second holds ranks 8-15, not "rank 1".
    pods = [
        PodView(name="j-worker-0", index=0),
        PodView(name="j-worker-1", index=1, exit_code=1, phase="Failed"),
    ]
    out = status.rank_summaries(pods, {}, per_pod=8)
    assert [(s["rank"], s["ranks"], s["pod"]) for s in out] == [(0, 8, "j-worker-0"), (8, 8, "j-worker-1")]
    # The rank table orders by node IP: once the logs name the ranks, the summaries follow them.
    out = status.rank_summaries(pods, {}, per_pod=8, logged_ranks={"j-worker-0": 8, "j-worker-1": 0})
    assert [(s["rank"], s["pod"]) for s in out] == [(0, "j-worker-1"), (8, "j-worker-0")]
    assert "ranks" not in status.rank_summaries(pods[:1], {})[0]


def test_summaries_are_bounded_for_big_jobs() -> None:
    pods = [PodView(name=f"w-{i}", index=i) for i in range(100)]
    pods[7] = PodView(name="w-7", index=7, exit_code=1, phase="Failed")
    out = status.rank_summaries(pods, {f"w-{i}": ["l"] for i in range(100)})
    with_lines = [s["rank"] for s in out if "lastLines" in s]
    assert with_lines == [0, 7]


def test_suspend_resume_resets_start_time() -> None:
    st = compute(Decision(c.SUSPENDED, c.REASON_SUSPENDED, "s"), prev={"startTime": format_time(T0 - 100)})
    assert "startTime" not in st and cond(st, c.SUSPENDED_CONDITION)["status"] == "True"
    resumed = compute(
        Decision(c.PENDING, c.REASON_PODS_PENDING, "p"), prev=st, state=JobState(c.SUSPENDED), now=T0 + 5
    )
    assert resumed["startTime"] == format_time(T0 + 5)
    assert cond(resumed, c.SUSPENDED_CONDITION)["status"] == "False"
    assert cond(resumed, c.SUSPENDED_CONDITION)["reason"] == c.REASON_RESUMED


def test_invalid_spec_status() -> None:
    st = status.invalid({}, "spec.hyperparameters.foo: unknown", 4, T0)
    assert st["phase"] == c.FAILED and st["reason"] == c.REASON_INVALID_SPEC
    assert cond(st, c.FAILED_CONDITION)["message"] == "spec.hyperparameters.foo: unknown"
    assert cond(st, c.CREATED) is None


def test_progress_update_time_moves_only_with_progress() -> None:
    run = Decision(c.RUNNING, c.REASON_ALL_RANKS_RUNNING, "ok")
    first = compute(run, progress={"epoch": 1, "step": 2})
    assert first["progress"] == {
        "epoch": 1,
        "step": 2,
        "updateTime": format_time(T0),
        "stage": "Training",
        "display": "1",
        "stepDisplay": "2",
    }
    same = compute(run, prev=first, progress={"epoch": 1, "step": 2}, now=T0 + 30)
    assert same["progress"]["updateTime"] == format_time(T0)
    moved = compute(run, prev=same, progress={"epoch": 1, "step": 3}, now=T0 + 40)
    assert moved["progress"]["updateTime"] == format_time(T0 + 40)


def test_patch_only_when_changed() -> None:
    st = compute(Decision(c.RUNNING, c.REASON_ALL_RANKS_RUNNING, "ok"), progress={"epoch": 1})
    assert status.patch_for(st, dict(st)) is None
    newer = {**st, "progress": {"epoch": 2}}
    newer.pop("startTime")
    assert status.patch_for(st, newer) == {
        "progress": {"epoch": 2, **{k: None for k in st["progress"] if k != "epoch"}},
        "startTime": None,
    }
    assert not status.is_transition(st, newer)
    assert status.is_transition(st, {**st, "phase": c.FAILED})


def test_history_is_kept_and_conditions_carry_observed_generation() -> None:
    run = Decision(c.RUNNING, c.REASON_ALL_RANKS_RUNNING, "ok")
    hist = [{"epoch": 1, "loss": 2.0, "seconds": 10.0, "time": format_time(T0)}]
    first = compute(run, history=hist, progress={"epoch": 2, "epochs": 2, "step": 5, "stepsPerEpoch": 10})
    assert first["history"] == hist and first["progress"]["eta"] == "5s"
    assert all(x["observedGeneration"] == 3 for x in first["conditions"])
    # The rank-0 pod is gone (no fresh history): status keeps what it had.
    done = compute(Decision(c.SUCCEEDED, c.REASON_SUCCEEDED, "all"), prev=first, now=T0 + 9)
    assert done["history"] == hist and done["progress"]["display"] == "2/2"
    assert done["progress"]["stepDisplay"] == "10/10"


def test_patch_clears_keys_that_left_a_nested_object() -> None:
    running = {"phase": "Running", "progress": {"epoch": 4, "step": 22, "eta": "0s", "stage": "Training"}}
    done = {"phase": "Succeeded", "progress": {"epoch": 4, "step": 22, "stage": "Done"}}
    patch = status.patch_for(running, done)
    assert patch == {"phase": "Succeeded", "progress": {"epoch": 4, "step": 22, "stage": "Done", "eta": None}}
