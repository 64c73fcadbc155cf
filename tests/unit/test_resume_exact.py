"""Automatic resume is exact: in-process training (no cluster) of a tiny model on CPU with fixed seeds.

An uninterrupted 4-epoch run is the reference. A run killed in epoch 3 and restarted resumes from the epoch-2
checkpoint; a run stopped by SIGTERM mid-epoch 3 writes a step checkpoint and resumes from that step; a run whose
newest checkpoint is corrupted resumes from the one before; a run with a step checkpoint after every step
(written in the background) SIGKILLed mid-epoch 3 resumes from the last step before the kill. Each ends with weights and optimizer state identical,
bit for bit, to the reference, and trains exactly the steps after its checkpoint. Augmentation is ON (random
resized crop, flip, colour jitter): each sample's draws are keyed by (seed, epoch, slot) (data/augment.py), so a
resumed epoch draws the same crops as the uninterrupted one.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from zoo_workloads import config
from zoo_workloads.data import synth
from zoo_workloads.errors import Stopped
from zoo_workloads.events import EventLog
from zoo_workloads.training import checkpoints, runner

MODEL = "resnet50_bam"
EPOCHS, STEPS = 4, 3
SETTINGS = [
    "width=8",
    "layers=[1, 1, 1, 1]",
    "image_size=32",
    f"epochs={EPOCHS}",
    f"steps_per_epoch={STEPS}",
    "batch_size=16",
    "lr_mode=cosine",
    "lr_max=0.1",
    "warmup_epochs=1",
    "crop_min_scale=0.08",
    "random_flip=true",
    "color_jitter=0.4",
    "eval_interval=0",
    "save_checkpoint_epochs=1",
    "keep_checkpoint_max=0",
    "save_checkpoint_seconds=0",  # step checkpoints only where a test asks: the resume points stay fixed
    "mode=pynative",
]

pytestmark = pytest.mark.slow


class Killed(RuntimeError):
    """Stands in for SIGKILL: the process ends without writing anything."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    synth.write_digits(root, size=32)
    try:
        runner.configure("CPU", "pynative", 0)
    except RuntimeError:  # an earlier test of this pytest process already started MindSpore's CPU runtime
        ms.set_context(mode=ms.PYNATIVE_MODE)
    return root / "train"


def _train(
    data: Path,
    out: Path,
    interrupt: tuple[int, int, str] | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
    extra: tuple[str, ...] = (),
    stop: runner.StopRequest | None = None,
) -> list[dict]:
    """One run of zoo-train's Run (as runner.train does it, without the distributed init); its JSON events.
    interrupt = (epoch, step, "kill" | "stop"): before that step's bookkeeping, raise or request a stop."""
    if interrupt is not None and monkeypatch is not None:
        original = runner.ZooCallback.on_train_step_end

        def hooked(self: runner.ZooCallback, run_context) -> None:
            cb = run_context.original_args()
            if (cb.cur_epoch_num, self.step_in_epoch + 1) == interrupt[:2]:
                if interrupt[2] == "kill":
                    raise Killed("killed")
                self.run.stop.request()
            original(self, run_context)

        monkeypatch.setattr(runner.ZooCallback, "on_train_step_end", hooked)
    stream = io.StringIO()
    params = config.resolve(MODEL, None, [*SETTINGS, *extra])
    ms.set_seed(int(params["seed"]))
    args = runner.RunArgs(MODEL, str(data), None, 10, str(out), "CPU", params)
    try:
        runner.Run(args, EventLog(0, stream), 0, 1, stop or runner.StopRequest()).execute()
    finally:
        if monkeypatch is not None:
            monkeypatch.undo()
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def _weights(out: Path) -> dict[str, np.ndarray]:
    data = ms.load_checkpoint(str(checkpoints.epoch_path(out, MODEL, EPOCHS)))
    return {k: v.asnumpy() for k, v in data.items()}


def _assert_identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    assert any("moments" in k for k in a) and "global_step" in a  # optimizer state is compared too
    different = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not different, f"{len(different)} of {len(a)} tensors differ, e.g. {different[:5]}"


def _steps(events: list[dict]) -> list[tuple[int, int]]:
    return [(e["epoch"], e["step"]) for e in events if e["event"] == "step"]


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("reference")
    events = _train(data, out)
    assert len(_steps(events)) == EPOCHS * STEPS
    assert not [e for e in events if e["event"] == "resume"]
    return _weights(out)


def test_killed_in_epoch_3_resumes_from_epoch_2_with_identical_weights(
    data, reference, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    with pytest.raises(Killed):
        _train(data, out, (3, 2, "kill"), monkeypatch)
    assert checkpoints.saved_epochs(out, MODEL) == [1, 2]
    # an explicit --set resume (spec.checkpoint.resumeFrom) only starts a run; a restart continues from the newest
    events = _train(data, out, extra=(f"resume={checkpoints.epoch_path(out, MODEL, 1)}",))
    resume = next(e for e in events if e["event"] == "resume")
    assert (resume["epoch"], resume["step"], resume["global_step"]) == (2, STEPS, 2 * STEPS)
    assert _steps(events) == [(e, s) for e in (3, 4) for s in range(1, STEPS + 1)]
    _assert_identical(reference, _weights(out))


def test_graceful_stop_mid_epoch_checkpoints_and_resumes_from_that_step(
    data, reference, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    with pytest.raises(Stopped):
        _train(data, out, (3, 2, "stop"), monkeypatch)
    stop_ckpt = checkpoints.step_path(out, MODEL, 3, 2)
    assert checkpoints.verify(stop_ckpt) is None
    events = _train(data, out)
    resume = next(e for e in events if e["event"] == "resume")
    assert (resume["epoch"], resume["step"], resume["path"]) == (3, 2, str(stop_ckpt))
    # only the steps not yet done: the last of epoch 3, then epoch 4
    assert _steps(events) == [(3, 3)] + [(4, s) for s in range(1, STEPS + 1)]
    _assert_identical(reference, _weights(out))


def test_killed_mid_epoch_resumes_from_the_background_step_checkpoint(data, reference, tmp_path, monkeypatch):
    from zoo_operator import status

    out = tmp_path / "out"
    every_step = ("save_checkpoint_steps=1", "keep_step_checkpoints=2")
    with pytest.raises(Killed):
        _train(data, out, (3, 3, "kill"), monkeypatch, extra=every_step)
    step_ckpt = checkpoints.step_path(out, MODEL, 3, 2)
    deadline = time.monotonic() + 120  # the writer thread outlives the "kill" here; a real SIGKILL loses it
    while checkpoints.read_manifest(step_ckpt) is None:
        assert time.monotonic() < deadline, (
            f"no manifest for {step_ckpt}: {sorted(p.name for p in out.iterdir())}"
        )
        time.sleep(0.1)
    saved = [checkpoints.parse_name(p.name, MODEL) for p in checkpoints.saved_files(out, MODEL)]
    assert [(e, st) for e, st in saved if st is not None] == [(3, 1), (3, 2)]  # keep_step_checkpoints=2
    assert checkpoints.saved_epochs(out, MODEL) == [1, 2]
    events = _train(data, out, extra=every_step)
    resume = next(e for e in events if e["event"] == "resume")
    assert (resume["epoch"], resume["step"], resume["path"]) == (3, 2, str(step_ckpt))
    assert _steps(events) == [(3, 3)] + [(4, s) for s in range(1, STEPS + 1)]
    # what status.resumes[].lostSteps says: the kill came before step 3 was reported, so nothing is trained again
    assert status.lost_steps({"epoch": 3, "step": 2, "stepsPerEpoch": STEPS}, resume["global_step"]) == 0
    _assert_identical(reference, _weights(out))


def test_corrupted_newest_checkpoint_falls_back_to_the_previous(data, reference, tmp_path, monkeypatch):
    out = tmp_path / "out"
    with pytest.raises(Killed):
        _train(data, out, (3, 1, "kill"), monkeypatch)
    newest = checkpoints.epoch_path(out, MODEL, 2)
    raw = bytearray(newest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    newest.chmod(0o600)
    newest.write_bytes(bytes(raw))
    events = _train(data, out)
    invalid = [e for e in events if e["event"] == "checkpoint_invalid"]
    assert [e["path"] for e in invalid] == [str(newest)] and "sha256" in invalid[0]["reason"]
    resume = next(e for e in events if e["event"] == "resume")
    assert (resume["epoch"], resume["step"]) == (1, STEPS)
    assert len(_steps(events)) == 3 * STEPS
    _assert_identical(reference, _weights(out))
    shutil.rmtree(out)


def test_sigterm_before_training_exits_without_a_checkpoint(data, tmp_path):
    stop = runner.StopRequest()
    stop.request()
    with pytest.raises(Stopped, match="before training began"):
        _train(data, tmp_path / "out", stop=stop)
    assert checkpoints.saved_files(tmp_path / "out", MODEL) == []


def test_last_words_save_the_last_completed_step_while_the_next_one_hangs(
    data, reference, tmp_path, monkeypatch
):
    """Last words (lastwords.py): no periodic step checkpoint (save_checkpoint_steps=0), so without them a fault
    in epoch 3 resumes from epoch 2. The supervisor asks at step 3 of epoch 3, from inside that step (the main
    thread is stuck there, as one blocked in a collective with a dead peer; the live network already holds step
    3's update). The watcher thread writes the copy held since step 2; the restart resumes there, bit-exact."""
    from zoo_workloads import lastwords

    out, words = tmp_path / "out", tmp_path / "words"
    words.mkdir()
    answers: list[dict | None] = []
    original = runner.ZooCallback.on_train_step_end

    def hung(self: runner.ZooCallback, run_context) -> None:
        if (run_context.original_args().cur_epoch_num, self.step_in_epoch + 1) == (3, 3):
            answers.append(lastwords.ask(words, alive=lambda: True, bound=120))
            raise Killed("killed by its supervisor after the last words")
        original(self, run_context)

    monkeypatch.setenv(lastwords.ENV_DIR, str(words))
    monkeypatch.setattr(runner.ZooCallback, "on_train_step_end", hung)
    with pytest.raises(Killed):
        _train(data, out)
    monkeypatch.undo()
    step_ckpt = checkpoints.step_path(out, MODEL, 3, 2)
    assert answers == [
        {"saved": True, "global_step": 2 * STEPS + 2, "path": str(step_ckpt), "epoch": 3, "step": 2}
    ]
    assert checkpoints.verify(step_ckpt) is None
    events = _train(data, out)  # the restarted process: no supervisor asking this time
    resume = next(e for e in events if e["event"] == "resume")
    assert (resume["epoch"], resume["step"], resume["path"]) == (3, 2, str(step_ckpt))
    assert _steps(events) == [(3, 3)] + [(4, s) for s in range(1, STEPS + 1)]
    _assert_identical(reference, _weights(out))
