"""From a finished run directory alone: zoo-eval --run reproduces the metrics the run reported for its best
checkpoint, zoo-export --run writes a MINDIR that loads back and runs a batch, and the run's config.yaml is
accepted back by zoo-train --config (issue 13). Real entry points in subprocesses, on a tiny model."""

from pathlib import Path

import pytest
from zoo_train_helpers import run_entry, tiny

from zoo_workloads.data import synth


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.slow
def test_eval_and_export_from_a_run_directory(tmp_path: Path):
    data = synth.write_synthetic("imagefolder", tmp_path / "data", classes=3, per_class=4, size=32)
    out = tmp_path / "run"
    train = run_entry(
        "zoo-train",
        [
            "--model",
            "resnet50_bam",
            "--data-dir",
            str(data),
            "--eval-dir",
            str(data.parent / "val"),
            "--num-classes",
            "3",
            "--output-dir",
            str(out),
            "--device",
            "CPU",
            *tiny("epochs=3", "lr_max=0.05"),
        ],
        _dir(tmp_path / "t"),
    )
    assert train.code == 0, train.stderr[-3000:]
    message = train.termination
    best, last = message["best"], message["last"]
    evals = {e["epoch"]: e["metrics"] for e in train.events if e["event"] == "eval"}
    # Each checkpoint carries the metrics of its own epoch; the top-level metrics are those of the one named.
    assert best["metrics"]["top_1_accuracy"] == evals[best["epoch"]]["top_1_accuracy"]
    assert last["epoch"] == 3 and last["metrics"]["top_1_accuracy"] == evals[3]["top_1_accuracy"]
    assert message["checkpoint"] == best["checkpoint"] == str(out / "resnet50_bam-best.ckpt")
    assert message["metrics"]["top_1_accuracy"] == best["metrics"]["top_1_accuracy"]
    assert not list(out.glob("rank_*")) and (out / "result.json").is_file()

    # Nothing but the run directory: model, width, layers, image size, classes and eval set come from it.
    ev = run_entry("zoo-eval", ["--run", str(out)], _dir(tmp_path / "e"))
    assert ev.code == 0, ev.stderr[-3000:]
    assert ev.termination["epochs"] == best["epoch"]
    kinds = [e["event"] for e in ev.events]  # progress like training's: start, a step per batch, the eval
    assert (
        kinds[0] == "start" and kinds[-1] == "eval" and kinds.count("step") == ev.events[0]["steps_per_epoch"]
    )
    for key in ("top_1_accuracy", "top_5_accuracy"):
        assert ev.termination["metrics"][key] == pytest.approx(best["metrics"][key], abs=1e-6)
    ev_last = run_entry("zoo-eval", ["--run", str(out), "--checkpoint", "last"], _dir(tmp_path / "l"))
    assert ev_last.code == 0 and ev_last.termination["epochs"] == 3
    assert ev_last.termination["metrics"]["top_1_accuracy"] == pytest.approx(
        last["metrics"]["top_1_accuracy"]
    )

    ex = run_entry("zoo-export", ["--run", str(out)], _dir(tmp_path / "x"))
    assert ex.code == 0, ex.stderr[-3000:]
    artifact = Path(ex.termination["artifact"])
    assert artifact == out / "resnet50_bam-best.mindir" and artifact.is_file()
    assert ex.termination["output_shape"] == [1, 3]

    import mindspore as ms
    import numpy as np

    graph = ms.nn.GraphCell(ms.load(str(artifact)))
    logits = graph(ms.Tensor(np.zeros((1, 3, 32, 32), np.float32))).asnumpy()
    assert logits.shape == (1, 3) and np.isfinite(logits).all()

    # The saved config goes back in as a config (the `model` key used to be refused with exit 64).
    again = run_entry(
        "zoo-train",
        [
            "--model",
            "resnet50_bam",
            "--data-dir",
            str(data),
            "--num-classes",
            "3",
            "--output-dir",
            str(tmp_path / "again"),
            "--device",
            "CPU",
            "--config",
            str(out / "config.yaml"),
            "--set",
            "epochs=1",
            "--set",
            "steps_per_epoch=1",
        ],
        _dir(tmp_path / "a"),
    )
    assert again.code == 0, again.stderr[-3000:]

    # The MindSpore ModelZoo's layout (issue 22): written under the reference network's names, read back by
    # zoo-eval to the same metrics.
    mz = run_entry("zoo-export", ["--run", str(out), "--format", "MODELZOO"], _dir(tmp_path / "m"))
    assert mz.code == 0, mz.stderr[-3000:]
    written = Path(mz.termination["artifact"])
    assert written == out / "resnet50_bam-best-modelzoo.ckpt" and written.is_file()
    names = ms.load_checkpoint(str(written)).keys()
    assert {
        "conv1.weight",
        "bn1.gamma",
        "bam1.channel_att.gate_c.1.weight",
        "layer1.0.downsample.0.weight",
    } <= names
    assert not any(name.startswith("stem.") for name in names)
    ev_mz = run_entry("zoo-eval", ["--run", str(out), "--checkpoint", str(written)], _dir(tmp_path / "z"))
    assert ev_mz.code == 0, ev_mz.stderr[-3000:]
    for key in ("top_1_accuracy", "top_5_accuracy"):
        assert ev_mz.termination["metrics"][key] == pytest.approx(best["metrics"][key], abs=1e-6)


@pytest.mark.slow
def test_multigrain_exports_its_backbone_as_the_official_resnet50(tmp_path: Path):
    """multigrain's ModelZoo layout is official/cv/ResNet's ResNet-50 (models/modelzoo.py): zoo-export writes the
    trunk under those names (the GeM pool has no parameter), and zoo-eval reads the file back to the same metrics."""
    import mindspore as ms

    data = synth.write_synthetic("imagefolder", tmp_path / "data", classes=3, per_class=4, size=32)
    out = tmp_path / "run"
    common = ["--data-dir", str(data), "--eval-dir", str(data.parent / "val"), "--device", "CPU"]
    train = run_entry(
        "zoo-train",
        [
            "--model",
            "multigrain",
            *common,
            "--num-classes",
            "3",
            "--output-dir",
            str(out),
            *tiny("optimizer=momentum"),
        ],
        _dir(tmp_path / "t"),
    )
    assert train.code == 0, train.stderr[-3000:]
    mz = run_entry("zoo-export", ["--run", str(out), "--format", "MODELZOO"], _dir(tmp_path / "m"))
    assert mz.code == 0, mz.stderr[-3000:]
    written = Path(mz.termination["artifact"])
    assert written == out / "multigrain-best-modelzoo.ckpt"
    names = ms.load_checkpoint(str(written)).keys()
    assert {
        "conv1.weight",
        "bn1.moving_mean",
        "layer1.0.down_sample_layer.1.gamma",
        "end_point.bias",
    } <= names
    assert not any(name.startswith(("stem.", "fc.")) or ".shortcut." in name for name in names)
    ev = run_entry("zoo-eval", ["--run", str(out), "--checkpoint", str(written)], _dir(tmp_path / "z"))
    assert ev.code == 0, ev.stderr[-3000:]
    best = train.termination["best"]["metrics"]
    for key in ("top_1_accuracy", "top_5_accuracy"):
        assert ev.termination["metrics"][key] == pytest.approx(best[key], abs=1e-6)
