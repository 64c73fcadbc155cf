"""Real training on scikit-learn's digits through zoo-train, then zoo-eval, zoo-export and resuming.

Measured (2 CPU cores): resnet50_bam width 8, layers [1,1,1,1], 32 px, batch 32, per-step cosine lr 0.1 over
4 epochs with one warmup epoch: top-1 after each epoch 0.23, 0.81, 0.92, 0.96 (about 45 s in all); the bound
below leaves a margin of 0.11.
"""

import pytest
from zoo_train_helpers import assert_event_shapes, run_entry

from zoo_workloads.data import synth

TOP1_BOUND = 0.85
EPOCHS = 4
SETTINGS = [
    "width=8",
    "layers=[1, 1, 1, 1]",
    "image_size=32",
    f"epochs={EPOCHS}",
    "batch_size=32",
    "lr_mode=cosine",
    "cosine_epochs=0",
    "lr_max=0.1",
    "warmup_epochs=1",
    "crop_min_scale=0.5",
    "random_flip=false",
    "eval_interval=0",
    "save_checkpoint_epochs=1",
    "keep_checkpoint_max=2",
    "save_checkpoint_seconds=0",  # the files checked below are the epoch ones
]


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("digits")
    synth.write_digits(root / "data", size=32)
    out = root / "out"
    result = run_entry(
        "zoo-train",
        [
            "--model",
            "resnet50_bam",
            "--data-dir",
            str(root / "data" / "train"),
            "--eval-dir",
            str(root / "data" / "val"),
            "--num-classes",
            "10",
            "--output-dir",
            str(out),
            "--device",
            "CPU",
            *_sets(SETTINGS),
        ],
        root,
        timeout=600,
    )
    assert result.code == 0, result.stderr[-3000:]
    return root, result


@pytest.mark.slow
def test_reaches_stated_top1(trained):
    root, result = trained
    assert_event_shapes(result.events)
    epochs = [e for e in result.events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, EPOCHS + 1))
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    evals = [e for e in result.events if e["event"] == "eval"]
    assert [e["epoch"] for e in evals] == [EPOCHS]  # eval_interval 0: only at the end
    top1 = evals[0]["metrics"]["top_1_accuracy"]
    assert top1 >= TOP1_BOUND
    done = result.events[-1]
    assert done["metrics"]["top_1_accuracy"] == top1 and done["epochs"] == EPOCHS
    assert result.termination == {
        "status": "succeeded",
        "metrics": done["metrics"],
        "checkpoint": done["checkpoint"],
        "epochs": EPOCHS,
        "best": done["best"],
        "last": done["last"],
    }
    # eval only at the end: the best checkpoint is the last epoch's, and both carry that epoch's metrics
    assert done["best"]["epoch"] == done["last"]["epoch"] == EPOCHS
    assert done["best"]["metrics"]["top_1_accuracy"] == done["last"]["metrics"]["top_1_accuracy"] == top1
    # keep_checkpoint_max 2: only the last two epoch files remain, plus the best
    out = root / "out"
    assert sorted(p.name for p in out.glob("*.ckpt")) == [
        "resnet50_bam-3.ckpt",
        "resnet50_bam-4.ckpt",
        "resnet50_bam-best.ckpt",
    ]
    saved = [e["path"] for e in result.events if e["event"] == "checkpoint"]
    assert str(out / "resnet50_bam-1.ckpt") in saved


@pytest.mark.slow
def test_eval_and_export_reproduce_the_checkpoint(trained, tmp_path):
    root, result = trained
    best = result.termination["checkpoint"]
    common = [
        "--model",
        "resnet50_bam",
        "--num-classes",
        "10",
        "--checkpoint",
        best,
        *_sets(["width=8", "layers=[1, 1, 1, 1]", "image_size=32"]),
    ]
    evaluated = run_entry("zoo-eval", [*common, "--data-dir", str(root / "data" / "val")], tmp_path)
    assert evaluated.code == 0, evaluated.stderr[-2000:]
    assert evaluated.events[-1]["metrics"]["top_1_accuracy"] == pytest.approx(
        result.termination["metrics"]["top_1_accuracy"]
    )
    exported = run_entry("zoo-export", [*common, "--output", str(tmp_path / "bam")], tmp_path)
    assert exported.code == 0, exported.stderr[-2000:]
    assert (tmp_path / "bam.mindir").stat().st_size > 10_000


@pytest.mark.slow
def test_resume_continues_after_the_saved_epoch(trained, tmp_path):
    root, _ = trained
    resumed = run_entry(
        "zoo-train",
        [
            "--model",
            "resnet50_bam",
            "--data-dir",
            str(root / "data" / "train"),
            "--num-classes",
            "10",
            "--output-dir",
            str(tmp_path / "o"),
            "--device",
            "CPU",
            "--resume",
            str(root / "out" / "resnet50_bam-4.ckpt"),
            *_sets([*SETTINGS, "epochs=5"]),
        ],
        tmp_path,
    )
    assert resumed.code == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    epochs = [e["epoch"] for e in resumed.events if e["event"] == "epoch"]
    assert epochs == [5]
    first_loss = next(e for e in resumed.events if e["event"] == "step")["loss"]
    assert first_loss < 1.5  # a trained network, not a fresh one (fresh: ~2.3 = ln 10)
