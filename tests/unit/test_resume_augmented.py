"""Resume is exact WITH augmentation on, on 2 ranks: the real zoo-launch -> zoo-train path on MindSpore's CPU
dynamic cluster (as test_data_parallel), random resized crop + flip + colour jitter at their defaults.

An uninterrupted 3-epoch run is the reference. A second run is SIGKILLed (every process) in the middle of epoch 2
and started again with the same command: it resumes from the epoch-1 checkpoint, and both ranks end with weights
and optimizer state bit-identical to the reference's. Before the keyed augmentation (data/augment.py) 278 of 290
tensors differed: the pipeline's random stream restarted with the process, not with the epoch.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from zoo_train_helpers import BIN, tiny

from zoo_workloads.data import synth

EPOCHS, STEPS = 3, 3
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(
    model: str, data: Path, out: Path, tmp: Path, kill_at: tuple[int, int] | None = None
) -> list[dict]:
    """A 2-rank job (scheduler + 2 workers); rank 0's events. kill_at=(epoch, step): SIGKILL every process as
    soon as rank 0 reports that step (the stand-in for a node failure)."""
    cmd = [
        str(BIN / "zoo-launch"),
        "--",
        str(BIN / "zoo-train"),
        "--model",
        model,
        "--data-dir",
        str(data),
        "--num-classes",
        "3",
        "--output-dir",
        str(out),
        "--device",
        "CPU",
        *tiny(
            f"epochs={EPOCHS}",
            f"steps_per_epoch={STEPS}",
            "batch_size=2",
            "save_every_rank=true",
            "save_checkpoint_epochs=1",
            "keep_checkpoint_max=0",
            "eval_interval=0",
            "color_jitter=0.4",
            "crop_min_scale=0.08",
            "random_flip=true",
            "autoaugment=false",
            "num_parallel_workers=2",
        ),
    ]
    base = {
        **os.environ,
        "MS_SCHED_HOST": "127.0.0.1",
        "MS_SCHED_PORT": str(_free_port()),
        "MS_WORKER_NUM": "2",
        "RANK_SIZE": "2",
    }
    procs: dict[str, subprocess.Popen] = {}
    for name, extra in [
        ("sched", {"MS_ROLE": "MS_SCHED", "MS_NODE_ID": "sched"}),
        ("w0", {"MS_ROLE": "MS_WORKER", "MS_NODE_ID": "0"}),
        ("w1", {"MS_ROLE": "MS_WORKER", "MS_NODE_ID": "1"}),
    ]:
        env = {**base, **extra, "ZOO_TERMINATION_LOG": str(tmp / f"{name}.term")}
        procs[name] = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
        )
    events: list[dict] = []
    killed = False
    try:
        assert procs["w0"].stdout is not None
        for line in procs["w0"].stdout:
            if not line.startswith("{"):
                continue
            events.append(json.loads(line))
            event = events[-1]
            if kill_at and event["event"] == "step" and (event["epoch"], event["step"]) == kill_at:
                for proc in procs.values():
                    os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
        for name, proc in procs.items():
            proc.wait(timeout=900)
            if not killed:
                assert proc.returncode == 0, f"{name} exited {proc.returncode}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert killed == (kill_at is not None)
    return events


def _final(out: Path, model: str, rank: int) -> dict[str, np.ndarray]:
    import mindspore as ms

    data = ms.load_checkpoint(str(out / f"rank_{rank}" / f"{model}-{EPOCHS}.ckpt"))
    return {k: v.asnumpy() for k, v in data.items()}


@pytest.mark.parametrize("model", ["resnet50_bam", "genet_res50"])
def test_two_ranks_killed_mid_epoch_resume_bit_identical_with_augmentation(model: str, tmp_path: Path):
    data = synth.write_synthetic("imagefolder", tmp_path / "data", classes=3, per_class=8, size=40)
    ref_out, out = tmp_path / "reference", tmp_path / "resumed"
    reference = _launch(model, data, ref_out, tmp_path)
    assert not [e for e in reference if e["event"] == "resume"]
    _launch(model, data, out, tmp_path, kill_at=(2, 2))
    assert not (out / "rank_0" / f"{model}-2.ckpt").exists()  # killed before epoch 2 was saved
    resumed = _launch(model, data, out, tmp_path)
    resume = next(e for e in resumed if e["event"] == "resume")
    assert resume["epoch"] == 1
    for rank in (0, 1):
        ref, got = _final(ref_out, model, rank), _final(out, model, rank)
        assert ref.keys() == got.keys() and any("moments" in k for k in ref)
        different = [k for k in ref if not np.array_equal(ref[k], got[k])]
        assert not different, (
            f"rank {rank}: {len(different)} of {len(ref)} tensors differ, e.g. {different[:5]}"
        )
