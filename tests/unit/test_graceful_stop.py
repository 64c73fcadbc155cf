"""SIGTERM through the real entry point: zoo-train finishes its step, writes a verified step checkpoint, exits 79
with a "Stopped" termination message, and the next run resumes from that step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo_workloads.data import synth
from zoo_workloads.errors import EXIT_STOPPED
from zoo_workloads.training import checkpoints

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
SETTINGS = [
    "width=8",
    "layers=[1, 1, 1, 1]",
    "image_size=32",
    "epochs=1",
    "steps_per_epoch=12",
    "batch_size=4",
    "mode=pynative",
    "eval_interval=0",
    "save_checkpoint_epochs=1",
]


def _command(data: Path, out: Path) -> list[str]:
    sets = [arg for item in SETTINGS for arg in ("--set", item)]
    return [
        str(BIN / "zoo-train"),
        "--model",
        "resnet50_bam",
        "--data-dir",
        str(data),
        "--num-classes",
        "10",
        "--output-dir",
        str(out),
        "--device",
        "CPU",
        *sets,
    ]


def test_sigterm_checkpoints_at_the_step_boundary_and_exits_79(tmp_path: Path) -> None:
    synth.write_digits(tmp_path / "data", size=32)
    out, term = tmp_path / "out", tmp_path / "termination-log"
    env = {**os.environ, "ZOO_TERMINATION_LOG": str(term)}
    proc = subprocess.Popen(
        _command(tmp_path / "data" / "train", out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    events = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            events.append(json.loads(line))
            if events[-1]["event"] == "step" and events[-1]["step"] == 3:
                proc.send_signal(signal.SIGTERM)
                sent = time.monotonic()
                break
    else:
        pytest.fail(f"no third step: {proc.stderr.read() if proc.stderr else ''}")
    rest, err = proc.communicate(timeout=120)
    took = time.monotonic() - sent
    assert proc.returncode == EXIT_STOPPED, err[-2000:]
    events += [json.loads(ln) for ln in rest.splitlines() if ln.startswith("{")]
    steps = [e for e in events if e["event"] == "step"]
    saved = [e for e in events if e["event"] == "checkpoint"]
    # the step in flight (maybe the next one) finished, then exactly one checkpoint at that boundary
    assert len(saved) == 1 and saved[0]["step"] == steps[-1]["step"] and steps[-1]["step"] in (3, 4)
    path = Path(saved[0]["path"])
    assert path.name == f"resnet50_bam-1_{steps[-1]['step']}.ckpt" and checkpoints.verify(path) is None
    message = json.loads(term.read_text())
    assert message["status"] == "failed" and message["reason"] == "Stopped" and message["retryable"] is True
    assert took < 60

    again = subprocess.run(
        _command(tmp_path / "data" / "train", out),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = [json.loads(ln) for ln in again.stdout.splitlines() if ln.startswith("{")]
    resume = next(e for e in resumed if e["event"] == "resume")
    assert (resume["epoch"], resume["step"]) == (1, steps[-1]["step"])
    first = next(e for e in resumed if e["event"] == "step")
    assert (first["epoch"], first["step"]) == (1, steps[-1]["step"] + 1)
    assert len([e for e in resumed if e["event"] == "step"]) == 12 - steps[-1]["step"]
