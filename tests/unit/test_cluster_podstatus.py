"""Pod phase, conditions and container status shapes reported by the local kubelet."""

import pytest

from zoocluster.podstatus import ContainerState, backoff_seconds, pod_conditions, pod_phase, restart_wanted


def c(state="running", code=None, started=True):
    s = ContainerState("c", "img", state=state, exit_code=code, ever_started=started)
    if state == "terminated":
        s.reason = "Completed" if code == 0 else "Error"
    return s


@pytest.mark.parametrize(
    ("policy", "init", "main", "phase"),
    [
        ("Never", [], [c("waiting", started=False)], "Pending"),
        ("Never", [c("running")], [c("waiting", started=False)], "Pending"),
        ("Never", [c("terminated", 1)], [c("waiting", started=False)], "Failed"),
        ("OnFailure", [c("terminated", 1)], [c("waiting", started=False)], "Pending"),
        ("Never", [c("terminated", 0)], [c("running")], "Running"),
        ("Never", [], [c("terminated", 0), c("running")], "Running"),
        ("Never", [], [c("terminated", 0), c("terminated", 2)], "Failed"),
        ("Never", [], [c("terminated", 0)], "Succeeded"),
        ("OnFailure", [], [c("terminated", 0)], "Succeeded"),
        ("OnFailure", [], [c("terminated", 3)], "Running"),
        ("Always", [], [c("terminated", 0)], "Running"),
    ],
)
def test_phase_follows_restart_policy(policy, init, main, phase):
    assert pod_phase(policy, init, main) == phase


def test_conditions_keep_transition_time_until_status_changes():
    running = [c("running")]
    first = pod_conditions([], "Running", [], running, "T1")
    again = pod_conditions(first, "Running", [], running, "T2")
    assert {x["type"]: x["status"] for x in again} == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    assert all(x["lastTransitionTime"] == "T1" for x in again)
    done = pod_conditions(again, "Succeeded", [], [c("terminated", 0)], "T3")
    ready = next(x for x in done if x["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == ("False", "PodCompleted", "T3")


def test_terminated_status_carries_exit_code_and_message():
    s = c("terminated", 66)
    s.message = '{"status": "failed"}'
    s.last_terminated = {"exitCode": 1}
    out = s.to_status()
    assert out["state"]["terminated"]["exitCode"] == 66
    assert out["state"]["terminated"]["reason"] == "Error"
    assert out["state"]["terminated"]["message"] == '{"status": "failed"}'
    assert out["lastState"] == {"terminated": {"exitCode": 1}}
    assert out["ready"] is False


def test_restart_rules_and_backoff():
    assert restart_wanted("Always", 0) and restart_wanted("OnFailure", 1)
    assert not restart_wanted("OnFailure", 0) and not restart_wanted("Never", 1)
    assert [backoff_seconds(n) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
