"""In-place recovery, end to end (issue 23): one rank's training process SIGKILLed mid-epoch (the process, not
the pod). zoo-launch restarts it inside its pod; MindSpore's dynamic cluster makes the surviving worker and the
scheduler exit after MS_NODE_TIMEOUT, and their zoo-launch restarts them too, so the whole gang re-forms with the
same pods, IPs and rank table and resumes from rank 0's newest step checkpoint. No pod is recreated, no
whole-gang restart is counted, at most the checkpoint interval of steps is trained again, and the job succeeds.
The process kill runs without periodic step checkpoints: the surviving rank 0 saves its last completed step
before its supervisor kills it (last words, lastwords.py), and the gang resumes exactly there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import E2E, kill_trainer_only, tiny_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EPOCHS, STEPS, EVERY = 3, 8, 2
HYPER = {
    "epochs": EPOCHS,
    "steps_per_epoch": STEPS,
    "batch_size": 4,
    "save_checkpoint_epochs": 1,
    "save_checkpoint_steps": EVERY,
    "save_checkpoint_seconds": 0,
}


def _events(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def _at_step(e2e: E2E, pod: str, epoch: int, step: int) -> bool:
    out = e2e.kubectl("logs", pod, "--tail=5", check=False)
    steps = [e for e in _events(out.stdout if out.returncode == 0 else "") if e.get("event") == "step"]
    return bool(steps) and (steps[-1]["epoch"], steps[-1]["step"]) >= (epoch, step)


def test_killed_training_process_restarts_in_place_from_the_step_checkpoint(
    e2e: E2E, tmp_path_factory: pytest.TempPathFactory
) -> None:
    storage: Path = tmp_path_factory.mktemp("inplace-checkpoints")
    # No periodic step checkpoint: only the survivor's last words can put the resume mid-epoch 2.
    hyper = {**HYPER, "save_checkpoint_steps": 0}
    body = tiny_job(
        "inplace", "resnet50_bam", e2e.data["digits"], replicas=2, evaluate=None, classes=10, **hyper
    )
    body["spec"]["checkpoint"] = {"hostPath": str(storage)}
    body["spec"]["runPolicy"] = {"backoffLimit": 1, "processRestarts": 3}
    e2e.apply(body)
    deadline = time.monotonic() + 900
    while not _at_step(e2e, "inplace-worker-0", 2, 3):
        assert time.monotonic() < deadline, "job inplace never reached epoch 2 step 3"
        assert e2e.status("inplace").get("phase") not in ("Succeeded", "Failed"), e2e.status("inplace")
        time.sleep(0.5)
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in e2e.pods("inplace")}
    assert len(uids) == 3, uids  # two workers and the dynamic cluster's scheduler
    kill_trainer_only(e2e.namespace, "inplace-worker-1")

    seen: dict[str, str] = {}

    def record(_status: dict[str, Any]) -> None:
        seen.update({p["metadata"]["name"]: p["metadata"]["uid"] for p in e2e.pods("inplace")})

    status = e2e.wait_phase("inplace", {"Succeeded", "Failed"}, timeout=900, on_poll=record)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    assert seen == uids, f"pods were recreated: before {uids}, seen {seen}"
    assert status.get("restarts", 0) == 0, status  # no whole-gang restart
    (resume,) = status["resumes"]
    assert resume["restart"] == 0 and resume["path"].endswith(f"_{resume['step']}.ckpt"), (
        resume
    )  # a step file
    # The last completed step, not a periodic checkpoint's (at most the one step rank 0 may have been finishing
    # locally, its all-reduce done, when it was asked).
    assert 0 <= resume["lostSteps"] <= 1, resume
    killed_log = _events(e2e.logs("inplace-worker-1"))
    restarted = [e for e in killed_log if e["event"] == "process_restart"]
    assert [(e["code"], e["restart"]) for e in restarted] == [(137, 1)], restarted
    survivor_log = _events(e2e.logs("inplace-worker-0"))
    survivor = [e for e in survivor_log if e["event"] == "process_restart"]
    assert [e["restart"] for e in survivor] == [1], survivor  # the gang restarted in place together
    # Rank 0 (whichever worker it is) said its last words: the step it completed last before the restart.
    for log in (survivor_log, killed_log):
        if any(e["event"] == "process_restart" and "last_words_step" in e for e in log):
            cut = next(i for i, e in enumerate(log) if e["event"] == "process_restart")
            last = [e for e in log[:cut] if e["event"] == "step"][-1]
            words, resumed = log[cut]["last_words_step"], (resume["epoch"] - 1) * STEPS + resume["step"]
            assert words == resumed == (last["epoch"] - 1) * STEPS + last["step"], (words, resume, last)
            assert (resume["epoch"], resume["step"]) == (last["epoch"], last["step"]), (resume, last)
            break
    else:
        pytest.fail(f"no last words from rank 0: {survivor}", pytrace=False)


def test_a_deleted_worker_pod_is_recreated_alone_and_the_gang_restarts_in_place(
    e2e: E2E, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Pod-level recovery (policy.replace_lost_pod): worker 1's pod deleted mid-epoch. Only that pod gets a new
    UID (same name, same attempt); the scheduler's and worker 0's supervisors hear it fall silent on the gang
    channel and restart their processes in place; everyone resumes from the newest step checkpoint."""
    storage: Path = tmp_path_factory.mktemp("podloss-checkpoints")
    body = tiny_job(
        "podloss", "resnet50_bam", e2e.data["digits"], replicas=2, evaluate=None, classes=10, **HYPER
    )
    body["spec"]["checkpoint"] = {"hostPath": str(storage)}
    body["spec"]["runPolicy"] = {
        "backoffLimit": 0,
        "processRestarts": 3,
    }  # a whole-gang restart would fail it
    e2e.apply(body)
    deadline = time.monotonic() + 900
    while not _at_step(e2e, "podloss-worker-0", 2, 3):
        assert time.monotonic() < deadline, "job podloss never reached epoch 2 step 3"
        assert e2e.status("podloss").get("phase") not in ("Succeeded", "Failed"), e2e.status("podloss")
        time.sleep(0.5)
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in e2e.pods("podloss")}
    assert len(uids) == 3, uids
    e2e.kubectl("delete", "pod", "podloss-worker-1", "--wait=false")

    seen: dict[str, set[str]] = {}

    def record(_status: dict[str, Any]) -> None:
        for p in e2e.pods("podloss"):
            seen.setdefault(p["metadata"]["name"], set()).add(p["metadata"]["uid"])

    status = e2e.wait_phase("podloss", {"Succeeded", "Failed"}, timeout=900, on_poll=record)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    assert status.get("restarts", 0) == 0, status  # no whole-gang restart
    assert seen["podloss-sched"] == {uids["podloss-sched"]}, seen
    assert seen["podloss-worker-0"] == {uids["podloss-worker-0"]}, seen
    assert len(seen["podloss-worker-1"] - {uids["podloss-worker-1"]}) == 1, seen  # one replacement
    (resume,) = status["resumes"]
    assert resume["path"].endswith(f"_{resume['step']}.ckpt") and 0 <= resume["lostSteps"] <= EVERY, resume
    survivor = [e for e in _events(e2e.logs("podloss-worker-0")) if e["event"] == "process_restart"]
    assert [(e["restart"], e["peer"]) for e in survivor] == [(1, True)], survivor  # restarted, not recreated
    assert "PodReplaced" in {e.get("reason") for e in e2e.events("podloss")}
