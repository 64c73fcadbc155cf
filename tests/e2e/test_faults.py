"""Faults, with real training processes and the chart-installed operator: a rank killed mid-training, the
operator restarted mid-training, a job deleted mid-training, an image that cannot be pulled, ranks that cannot
be scheduled. The four training jobs run concurrently (module fixture `disrupted`), and each is disrupted as soon
as both its ranks are stepping; the tests then check the outcomes.

A rank is killed the way an OOM killer or a node fault would: SIGKILL to its training process, found through
/proc by the pod's environment (the local kubelet runs containers as host processes).
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
from conftest import operator_pods
from e2e_helpers import E2E, kill_training, tiny_job, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# Long enough to be hit mid-training: 2 epochs of 40 tiny PyNative steps.
LONG = {"epochs": 2, "steps_per_epoch": 40, "batch_size": 2}


def long_job(e2e: E2E, name: str, backoff: int, replicas: int = 2) -> dict[str, Any]:
    """A 2-rank reduced resnet50_bam job that trains for a while."""
    body = tiny_job(name, "resnet50_bam", e2e.data["images"], replicas=replicas, **LONG)
    body["spec"]["runPolicy"] = {"backoffLimit": backoff}
    return body


def stepping(e2e: E2E, pod: str) -> bool:
    """Whether the pod's log shows a training step already."""
    out = e2e.kubectl("logs", pod, "--tail=20", check=False)
    return out.returncode == 0 and '"event": "step"' in out.stdout


def attempts(e2e: E2E, job: str) -> dict[str, tuple[str, str]]:
    """Live pod name -> (uid, attempt annotation)."""
    return {
        p["metadata"]["name"]: (p["metadata"]["uid"], p["metadata"]["annotations"]["modelzoo.io/attempt"])
        for p in e2e.pods(job)
        if not p["metadata"].get("deletionTimestamp")
    }


@dataclasses.dataclass
class Disruptions:
    """What the fixture did to the running jobs, and what it saw just before."""

    killed: dict[str, int] = dataclasses.field(default_factory=dict)  # job -> PID of its killed rank
    before: dict[str, dict[str, tuple[str, str]]] = dataclasses.field(default_factory=dict)  # job -> pods
    old_operator: str = ""
    owned_before_delete: dict[str, list[str]] = dataclasses.field(default_factory=dict)


@pytest.fixture(scope="module")
def disrupted(e2e: E2E) -> Disruptions:
    """Four jobs trained concurrently; each is hit as soon as its ranks are stepping: kill0 and kill1 lose rank
    1's process (backoffLimit 0 and 1), opr sees its operator pod deleted, gone is deleted."""
    for name, backoff in (("kill0", 0), ("kill1", 1), ("opr", 0), ("gone", 0)):
        e2e.apply(long_job(e2e, name, backoff))
    done = Disruptions()
    todo = {"kill0", "kill1", "opr", "gone"}
    deadline = time.monotonic() + 600
    while todo and time.monotonic() < deadline:
        for job in sorted(todo):
            if not (stepping(e2e, f"{job}-worker-0") and stepping(e2e, f"{job}-worker-1")):
                continue
            done.before[job] = attempts(e2e, job)
            if job.startswith("kill"):
                done.killed[job] = kill_training(e2e.namespace, f"{job}-worker-1")
            elif job == "opr":
                (done.old_operator,) = [p["metadata"]["name"] for p in operator_pods(e2e)]
                e2e.cluster.kubectl(
                    "delete", "pod", done.old_operator, "-n", e2e.release_namespace, "--wait=false"
                )
            else:
                done.owned_before_delete = e2e.owned(job)
                e2e.kubectl("delete", "ztj", job, "--wait=false")
            todo.discard(job)
        time.sleep(1)
    assert not todo, f"jobs {sorted(todo)} never started training"
    return done


def test_killed_rank_with_backoff_limit_0_fails_the_job(e2e: E2E, disrupted: Disruptions) -> None:
    failed = e2e.wait_phase("kill0", {"Failed", "Succeeded"}, timeout=300)
    assert (failed["phase"], failed["reason"]) == ("Failed", "BackoffLimitExceeded"), failed
    # Names the rank, its exit code (128 + SIGKILL) and the limit.
    assert "kill0-worker-1 failed with exit code 137" in failed["message"], failed["message"]
    assert "backoffLimit=0" in failed["message"]
    assert failed.get("restarts", 0) == 0


def test_killed_rank_restarts_the_whole_gang_which_then_succeeds(e2e: E2E, disrupted: Disruptions) -> None:
    done = e2e.wait_phase("kill1", {"Failed", "Succeeded"}, timeout=900)
    assert done["phase"] == "Succeeded", json.dumps(done, indent=1)[-3000:]
    assert done["restarts"] == 1 and done["progress"]["epoch"] == 2
    before, after = disrupted.before["kill1"], attempts(e2e, "kill1")
    assert sorted(before) == ["kill1-sched", "kill1-worker-0", "kill1-worker-1"]
    # The scheduler pod may be gone already: cleanPodPolicy Running deletes it once the job has succeeded.
    assert sorted(set(after) - {"kill1-sched"}) == ["kill1-worker-0", "kill1-worker-1"], after
    # Every pod of the gang was replaced (attempt 1), not only the killed one.
    assert all(after[n][1] == "1" and after[n][0] != before[n][0] for n in after), (before, after)
    events = e2e.events("kill1")
    restart = [e for e in events if e["reason"] == "GangRestart"]
    assert restart and "kill1-worker-1 failed with exit code 137" in restart[0]["message"]
    assert events[-1]["reason"] == "JobSucceeded", [e["reason"] for e in events]


def test_operator_restart_mid_training_duplicates_nothing(e2e: E2E, disrupted: Disruptions) -> None:
    def new_operator_running() -> bool:
        pods = operator_pods(e2e)
        return any(
            p["metadata"]["name"] != disrupted.old_operator and p["status"].get("phase") == "Running"
            for p in pods
        )

    wait_for("the Deployment's new operator pod", new_operator_running, timeout=120)
    seen_pods: set[str] = set()

    def poll(status: dict[str, Any]) -> None:
        seen_pods.update(f"{n}/{uid}" for n, (uid, _) in attempts(e2e, "opr").items())

    status = e2e.wait_phase("opr", {"Succeeded", "Failed"}, timeout=900, on_poll=poll)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-3000:]
    assert status.get("restarts", 0) == 0
    # The same pods throughout: the new operator adopted them and created none. (The scheduler pod may be gone:
    # cleanPodPolicy Running deletes it once the job has succeeded.)
    before = {f"{n}/{uid}" for n, (uid, _) in disrupted.before["opr"].items()}
    assert seen_pods <= before, (seen_pods, before)
    assert {p for p in seen_pods if "-worker-" in p} == {p for p in before if "-worker-" in p}
    assert status["progress"]["epoch"] == 2 and status["result"]["top1"] >= 0


def test_deleting_a_job_mid_training_removes_everything(e2e: E2E, disrupted: Disruptions) -> None:
    assert disrupted.owned_before_delete == {
        "Pod": ["gone-sched", "gone-worker-0", "gone-worker-1"],
        "Service": ["gone"],
        "ConfigMap": ["gone-launch"],
    }
    wait_for("the job to be gone", lambda: e2e.get("ztj", "gone") is None, timeout=120)
    wait_for(
        "the job's pods, service and config map to be gone",
        lambda: e2e.owned("gone") == {"Pod": [], "Service": [], "ConfigMap": []},
        timeout=120,
    )
    wait_for("the pod objects to be removed", lambda: not e2e.pods("gone"), timeout=120)


SCHEDULING_TIMEOUT = 20
STUCK = {
    "no-image": ({"image": "zoo-operator/no-such-image:1"}, "ImagePullFailed", "ErrImagePull"),
    "no-node": (
        {"podTemplate": {"nodeSelector": {"zoo-e2e/nowhere": "true"}}},
        "SchedulingTimeout",
        "not scheduled",
    ),
}


@pytest.fixture(scope="module")
def stuck_jobs(e2e: E2E) -> dict[str, float]:
    """Both stuck jobs applied at once; name -> when it was applied."""
    applied = {}
    for name, (spec, _, _) in STUCK.items():
        body = tiny_job(name, "resnet50_bam", e2e.data["images"])
        body["spec"].update(spec)
        body["spec"]["runPolicy"]["schedulingTimeoutSeconds"] = SCHEDULING_TIMEOUT
        e2e.apply(body)
        applied[name] = time.monotonic()
    return applied


@pytest.mark.parametrize("name", sorted(STUCK))
def test_job_that_cannot_start_fails_after_the_scheduling_timeout(
    e2e: E2E, stuck_jobs: dict[str, float], name: str
) -> None:
    _, reason, words = STUCK[name]
    status = e2e.wait_phase(name, {"Failed", "Succeeded", "Running"}, timeout=SCHEDULING_TIMEOUT + 60)
    waited = time.monotonic() - stuck_jobs[name]
    assert (status["phase"], status["reason"]) == ("Failed", reason), status
    assert (
        words in status["message"] and f"schedulingTimeoutSeconds={SCHEDULING_TIMEOUT}" in status["message"]
    )
    assert waited >= SCHEDULING_TIMEOUT
    warnings = [e["reason"] for e in e2e.events(name) if e["type"] == "Warning"]
    assert reason in warnings
