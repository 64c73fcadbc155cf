"""The chaos test's checks (tests/integration/chaos_checks.py) on plain data: each fires on the violation it
exists for and stays quiet on what a correct operator does (a gang restart's new attempt, a finished job)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from chaos_checks import Ledger, unowned


def pod(
    name: str, uid: str, attempt: str = "0", phase: str = "Running", deleting: bool = False
) -> dict[str, Any]:
    job, _, rank = name.rpartition("-worker-")
    meta: dict[str, Any] = {
        "name": name,
        "uid": uid,
        "labels": {"modelzoo.io/job-name": job, "modelzoo.io/role": "worker", "modelzoo.io/rank": rank},
        "annotations": {"modelzoo.io/attempt": attempt},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"kind": "Pod", "metadata": meta, "status": {"phase": phase}}


def job(name: str, phase: str | None, restarts: int = 0, epoch: int = 0) -> dict[str, Any]:
    status: dict[str, Any] = {} if phase is None else {"phase": phase, "restarts": restarts}
    if epoch:
        status["progress"] = {"epoch": epoch}
    return {"kind": "ZooTrainingJob", "metadata": {"name": name}, "status": status}


def test_a_correct_run_has_no_problems() -> None:
    ledger = Ledger()
    ledger.record([job("a", None)], 0)
    ledger.record([job("a", "Pending"), pod("a-worker-0", "u1")], 1)
    ledger.record([job("a", "Running", epoch=1), pod("a-worker-0", "u1")], 2)
    # A gang restart: the old pod is deleting while the new attempt's pod of the same rank exists.
    ledger.record([job("a", "Restarting", 1, 1), pod("a-worker-0", "u1", deleting=True)], 3)
    ledger.record([job("a", "Running", 1, 1), pod("a-worker-0", "u2", attempt="1")], 4)
    ledger.record([job("a", "Succeeded", 1, 2), pod("a-worker-0", "u2", "1", "Succeeded")], 5)
    ledger.record([job("a", "Succeeded", 1, 2)], 6)  # cleanPodPolicy deleted the pod
    assert ledger.problems == [] and ledger.terminal == {"a": "Succeeded"} and ledger.snapshots == 7


def test_two_live_pods_of_one_rank_and_attempt_are_a_duplicate() -> None:
    ledger = Ledger()
    twin = pod("a-worker-0", "u2")
    twin["metadata"]["name"] = "a-worker-0-x"  # same labels, another name: what a forged or doubled pod is
    ledger.record([pod("a-worker-0", "u1"), twin], 7)
    assert any("2 live pods" in p and "'u1', 'u2'" in p for p in ledger.problems), ledger.problems


def test_a_rank_created_again_in_the_same_attempt_is_a_duplicate() -> None:
    ledger = Ledger()
    ledger.record([pod("a-worker-1", "u1")], 1)
    ledger.record([], 2)  # deleted (or missed by the poll)
    ledger.record([pod("a-worker-1", "u9")], 3)
    assert ledger.problems == ["rank ('a', 'worker', '1', '0') created again: pod uids ['u1'] then u9"]


def test_status_regressions_are_found() -> None:
    ledger = Ledger()
    ledger.record([job("a", "Running", 2, 3), job("b", "Failed"), job("c", "Running")], 1)
    ledger.record([job("a", "Running", 1, 2), job("b", "Running"), job("c", None)], 2)
    assert sorted(ledger.problems) == [
        "t=2.0s: job a: epoch went down 3 -> 2",
        "t=2.0s: job a: restarts went down 2 -> 1",
        "t=2.0s: job b: phase left terminal Failed for Running",
        "t=2.0s: job c: status phase Running vanished",
    ]


def test_terminal_phase_flipping_between_succeeded_and_failed_is_a_regression() -> None:
    ledger = Ledger()
    ledger.record([job("a", "Running")], 1)
    ledger.record([job("a", "Succeeded")], 2)
    ledger.record([job("a", "Failed")], 3)
    assert ledger.problems == ["t=3.0s: job a: phase left terminal Succeeded for Failed"]


def test_unowned_names_objects_the_job_does_not_control() -> None:
    def obj(kind: str, name: str, owner_uid: str | None, controller: bool = True) -> dict[str, Any]:
        refs = [{"kind": "ZooTrainingJob", "uid": owner_uid, "controller": controller}] if owner_uid else []
        return {
            "kind": kind,
            "metadata": {"name": name, "labels": {"modelzoo.io/job-name": "a"}, "ownerReferences": refs},
        }

    found = unowned(
        [
            obj("ConfigMap", "a-launch", "uid-a"),
            obj("Service", "a", None),
            obj("Pod", "a-worker-0", "uid-old"),
            obj("NetworkPolicy", "a", "uid-a", controller=False),
            {"kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}},
        ],
        {"a": "uid-a"},
    )
    assert found == [
        "NetworkPolicy/a (job a, owners [])",
        "Pod/a-worker-0 (job a, owners ['uid-old'])",
        "Service/a (job a, owners [])",
    ]
