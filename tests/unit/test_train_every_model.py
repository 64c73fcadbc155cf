"""Every registered model trains one tiny epoch and evaluates through the real zoo-train entry point."""

from pathlib import Path

import pytest
from zoo_train_helpers import assert_event_shapes, run_entry, tiny

from zoo_workloads.data import synth
from zoo_workloads.models import list_models, model_spec

# Model-specific settings for a CPU smoke run: THOR has no CPU kernels; repeated augmentation needs batches of
# several copies; short clips keep the 3D model fast.
EXTRA = {
    "multigrain": ["optimizer=momentum", "batch_size=6", "repeated_augment=3"],
    "resnet3d": ["clip_length=8", "batch_size=2", "finetune_last_stage=true"],
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synth")
    images = synth.write_synthetic("imagefolder", root / "img", classes=3, per_class=4, size=32)
    frames = synth.write_synthetic("video", root / "vid", classes=3, per_class=4, size=32)
    return {"image": images, "image_eval": images.parent / "val", "video": frames, "video_eval": frames}


@pytest.mark.slow
@pytest.mark.parametrize("model", list_models())
def test_tiny_train_and_eval(model, datasets, tmp_path):
    kind = model_spec(model).input_kind
    out = tmp_path / "out"
    result = run_entry(
        "zoo-train",
        [
            "--model",
            model,
            "--data-dir",
            str(datasets[kind]),
            "--eval-dir",
            str(datasets[f"{kind}_eval"]),
            "--num-classes",
            "3",
            "--output-dir",
            str(out),
            "--device",
            "CPU",
            *tiny(*EXTRA.get(model, [])),
        ],
        tmp_path,
    )
    assert result.code == 0, result.stderr[-3000:]
    assert_event_shapes(result.events)
    steps = [e for e in result.events if e["event"] == "step"]
    assert [s["step"] for s in steps] == [1, 2]
    assert all(s["loss"] is not None and s["loss"] > 0 for s in steps)
    evals = [e for e in result.events if e["event"] == "eval"]
    assert len(evals) == 1 and 0.0 <= evals[0]["metrics"]["top_1_accuracy"] <= 1.0
    if kind == "video":
        assert "clip_accuracy" in evals[0]["metrics"]
    assert "epoch: 1 step: 2, loss is" in result.stdout and "result: {'top_1_accuracy'" in result.stdout
    message = result.termination
    assert message["status"] == "succeeded" and message["epochs"] == 1
    assert message["metrics"]["top_1_accuracy"] == evals[0]["metrics"]["top_1_accuracy"]
    assert Path(message["checkpoint"]).is_file()
    assert (out / f"{model}-1.ckpt").is_file() and (out / "config.yaml").is_file()
