"""Training that survives, end to end: a rank killed in epoch 3 of 4 on the local cluster. The operator restarts
the gang, every rank resumes from the epoch-2 checkpoint on the job's durable (hostPath) storage, status and an
Event say so, the job succeeds, and its final weights equal those of the same job run without interruption
(run alongside; augmentations made deterministic, see tests/unit/test_resume_exact.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from e2e_helpers import E2E, kill_training, tiny_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EPOCHS, STEPS = 4, 8
HYPER = {
    "epochs": EPOCHS,
    "steps_per_epoch": STEPS,
    "batch_size": 4,
    "save_checkpoint_epochs": 1,
    "save_checkpoint_seconds": 0,  # these tests resume from the epoch (or graceful-stop) checkpoint
    "crop_min_scale": 1.0,
    "random_flip": False,
    "color_jitter": 0.0,
}


def resumable_job(e2e: E2E, name: str, storage: Path) -> dict[str, Any]:
    body = tiny_job(name, "resnet50_bam", e2e.data["digits"], replicas=2, evaluate=None, classes=10, **HYPER)
    body["spec"]["checkpoint"] = {"hostPath": str(storage)}
    body["spec"]["runPolicy"] = {"backoffLimit": 1}
    return body


def in_epoch(e2e: E2E, pod: str, epoch: int) -> bool:
    out = e2e.kubectl("logs", pod, "--tail=5", check=False)
    text = out.stdout if out.returncode == 0 else ""
    return '"event": "step", "ts"' in text and f'"epoch": {epoch}, "step"' in text


def test_killed_rank_resumes_from_the_last_checkpoint(
    e2e: E2E, tmp_path_factory: pytest.TempPathFactory
) -> None:
    storage = tmp_path_factory.mktemp("checkpoints")
    e2e.apply(resumable_job(e2e, "resume", storage))
    e2e.apply(resumable_job(e2e, "resref", storage))  # the same job, never interrupted
    deadline = time.monotonic() + 900
    while not in_epoch(e2e, "resume-worker-0", 3):
        assert time.monotonic() < deadline, "job resume never reached epoch 3"
        assert e2e.status("resume").get("phase") not in ("Succeeded", "Failed"), e2e.status("resume")
        time.sleep(0.5)
    kill_training(e2e.namespace, "resume-worker-1")

    status = e2e.wait_phase("resume", {"Succeeded", "Failed"}, timeout=900)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    assert status["restarts"] == 1 and status.get("stoppedRestarts", 0) == 0
    (resume,) = status["resumes"]
    assert (resume["restart"], resume["epoch"], resume["step"]) == (1, 2, STEPS), resume
    assert 0 <= resume["lostSteps"] <= STEPS  # at most the steps of epoch 3 done before the kill
    assert (
        resume["path"].endswith("/resnet50_bam-2.ckpt") and "rank_" not in resume["path"]
    )  # rank 0's one copy
    assert (status["lastCheckpoint"]["epoch"], status["lastCheckpoint"]["step"]) == (EPOCHS, STEPS)
    reasons = [e["reason"] for e in e2e.events("resume")]
    assert "TrainingResumed" in reasons and "GangRestart" in reasons
    # the restarted attempt trained exactly epochs 3 and 4
    log = e2e.logs("resume-worker-0")
    steps = [
        (e["epoch"], e["step"])
        for e in map(json.loads, (ln for ln in log.splitlines() if ln.startswith("{")))
        if e["event"] == "step"
    ]
    assert steps == [(e, s) for e in (3, 4) for s in range(1, STEPS + 1)]

    reference = e2e.wait_phase("resref", {"Succeeded", "Failed"}, timeout=900)
    assert reference["phase"] == "Succeeded" and reference["restarts"] == 0
    import mindspore as ms

    def final(st: dict[str, Any]) -> dict[str, np.ndarray]:
        path = storage / st["lastCheckpoint"]["path"].removeprefix("/zoo/checkpoint/")
        return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items()}

    got, want = final(status), final(reference)
    assert got.keys() == want.keys()
    diff = {
        k: float(np.max(np.abs(got[k].astype(np.float64) - want[k])))
        for k in got
        if not np.array_equal(got[k], want[k])
    }
    largest = sorted(diff.items(), key=lambda x: -x[1])[:3]
    assert not diff, f"{len(diff)} of {len(got)} tensors differ; largest: {largest}"


def test_suspend_mid_epoch_checkpoints_and_resume_continues_from_it(
    e2e: E2E, tmp_path_factory: pytest.TempPathFactory
) -> None:
    storage = tmp_path_factory.mktemp("suspend-checkpoints")
    body = tiny_job(
        "susp",
        "resnet50_bam",
        e2e.data["digits"],
        replicas=1,
        evaluate=None,
        classes=10,
        **{**HYPER, "epochs": 3},
    )
    body["spec"]["checkpoint"] = {"hostPath": str(storage)}
    e2e.apply(body)
    deadline = time.monotonic() + 900
    while not in_epoch(e2e, "susp-worker-0", 2):
        assert time.monotonic() < deadline, "job susp never reached epoch 2"
        time.sleep(0.5)
    e2e.kubectl("patch", "ztj", "susp", "--type", "merge", "-p", '{"spec": {"runPolicy": {"suspend": true}}}')
    e2e.wait_phase("susp", {"Suspended"}, timeout=300)
    deadline = time.monotonic() + 300
    while e2e.pods("susp"):
        assert time.monotonic() < deadline, "pods of the suspended job never went away"
        time.sleep(1)
    # SIGTERM from the pod deletion: the rank finished its step and wrote a step checkpoint before exiting
    (stop,) = [p for p in storage.rglob("resnet50_bam-2_*.ckpt")]
    stopped_at = int(stop.stem.rsplit("_", 1)[1])
    assert 0 < stopped_at < STEPS and stop.with_name(stop.name + ".manifest.json").is_file()

    e2e.kubectl(
        "patch", "ztj", "susp", "--type", "merge", "-p", '{"spec": {"runPolicy": {"suspend": false}}}'
    )
    status = e2e.wait_phase("susp", {"Succeeded", "Failed"}, timeout=900)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    (resume,) = status["resumes"]
    assert (resume["epoch"], resume["step"]) == (2, stopped_at) and resume["path"].endswith(stop.name)
    log = e2e.logs("susp-worker-0")
    steps = [
        (e["epoch"], e["step"])
        for e in map(json.loads, (ln for ln in log.splitlines() if ln.startswith("{")))
        if e["event"] == "step"
    ]
    assert steps[0] == (2, stopped_at + 1) and steps[-1] == (3, STEPS)


def test_corrupted_newest_checkpoint_is_skipped_for_the_one_before(
    e2e: E2E, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The epoch-2 checkpoint is damaged on disk (a bit flipped mid-file, as a bad disk or a torn copy would) while
    the job trains epoch 3; its rank is then killed. The restarted gang verifies the newest checkpoint, skips it
    with a Warning Event and resumes from epoch 1's."""
    storage = tmp_path_factory.mktemp("corrupt-checkpoints")
    steps = 3 * STEPS  # a longer epoch 3: the kill lands well before its end (and its checkpoint)
    body = tiny_job(
        "corrupt",
        "resnet50_bam",
        e2e.data["digits"],
        replicas=1,
        evaluate=None,
        classes=10,
        **{**HYPER, "epochs": 3, "steps_per_epoch": steps},
    )
    body["spec"]["checkpoint"] = {"hostPath": str(storage)}
    body["spec"]["runPolicy"] = {"backoffLimit": 1}
    e2e.apply(body)
    deadline = time.monotonic() + 900
    while not in_epoch(e2e, "corrupt-worker-0", 3):
        assert time.monotonic() < deadline, "job corrupt never reached epoch 3"
        assert e2e.status("corrupt").get("phase") not in ("Succeeded", "Failed"), e2e.status("corrupt")
        time.sleep(0.5)
    (newest,) = storage.rglob("resnet50_bam-2.ckpt")
    raw = bytearray(newest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    newest.write_bytes(bytes(raw))
    kill_training(e2e.namespace, "corrupt-worker-0")

    status = e2e.wait_phase("corrupt", {"Succeeded", "Failed"}, timeout=900)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    (resume,) = status["resumes"]
    assert (resume["restart"], resume["epoch"], resume["step"]) == (1, 1, steps), resume
    assert resume["path"].endswith("/resnet50_bam-1.ckpt")
    warnings = [
        e for e in e2e.events("corrupt") if e["type"] == "Warning" and e["reason"] == "CheckpointInvalid"
    ]
    assert warnings and "resnet50_bam-2.ckpt" in warnings[0]["message"], warnings
