"""A run's result pairs each checkpoint with the metrics of the epoch it holds (issue 13), and a run directory is
enough to evaluate or export it: pure tests of the ledger, the saved config and `--run DIR` resolution."""

import argparse
import json

import pytest

from zoo_workloads import config, events
from zoo_workloads.cli import rundir
from zoo_workloads.errors import ConfigError
from zoo_workloads.training import results


def _run(ledger: results.Ledger, evals: dict[int, float], epochs: int, every: int) -> None:
    """Drive the ledger like the runner: loss, eval, the epoch checkpoint when due, the best when improved."""
    for epoch in range(1, epochs + 1):
        ledger.trained(epoch, 1.0 / epoch)
        improved = False
        if epoch in evals:
            improved = ledger.evaluated(epoch, {"top_1_accuracy": evals[epoch], "top_5_accuracy": 1.0})
        if epoch == epochs or epoch % every == 0:
            ledger.checkpointed("last", epoch, f"/o/m-{epoch}.ckpt")
        if improved:
            ledger.checkpointed("best", epoch, "/o/m-best.ckpt")


def test_best_checkpoint_carries_its_own_epochs_metrics_not_the_last():
    # The reported bug: best at epoch 3 (0.3125), last epoch 4 scored 0.25; status said 0.25 with -best.ckpt.
    ledger = results.Ledger()
    _run(ledger, {1: 0.1, 2: 0.2, 3: 0.3125, 4: 0.25}, epochs=4, every=1)
    summary = ledger.summary()
    assert summary["best"] == {
        "epoch": 3,
        "checkpoint": "/o/m-best.ckpt",
        "metrics": {"loss": pytest.approx(1 / 3), "top_1_accuracy": 0.3125, "top_5_accuracy": 1.0},
    }
    assert summary["last"]["epoch"] == 4 and summary["last"]["checkpoint"] == "/o/m-4.ckpt"
    assert summary["last"]["metrics"]["top_1_accuracy"] == 0.25
    assert summary["checkpoint"] == "/o/m-best.ckpt" and summary["metrics"]["top_1_accuracy"] == 0.3125


def test_last_checkpoint_without_an_eval_that_epoch_gets_no_foreign_metrics():
    ledger = results.Ledger()
    _run(ledger, {2: 0.5}, epochs=3, every=1)
    summary = ledger.summary()
    assert summary["last"]["epoch"] == 3 and "top_1_accuracy" not in summary["last"]["metrics"]
    assert summary["best"]["epoch"] == 2 and summary["best"]["metrics"]["top_1_accuracy"] == 0.5


def test_no_eval_set_names_the_last_checkpoint():
    ledger = results.Ledger()
    _run(ledger, {}, epochs=2, every=5)
    summary = ledger.summary()
    assert "best" not in summary and summary["checkpoint"] == "/o/m-2.ckpt"
    assert summary["metrics"] == {"loss": 0.5}


def test_equal_score_is_not_a_new_best():
    ledger = results.Ledger()
    _run(ledger, {1: 0.5, 2: 0.5}, epochs=2, every=1)
    assert ledger.summary()["best"]["epoch"] == 1


def test_ledger_round_trips_and_resume_forgets_redone_epochs(tmp_path):
    ledger = results.Ledger()
    _run(ledger, {1: 0.4, 2: 0.6, 3: 0.5, 4: 0.55}, epochs=4, every=1)
    results.write(ledger, tmp_path)
    back = results.read(tmp_path)
    assert back.summary() == ledger.summary()
    back.forget_after(2)  # resumed from the epoch-2 checkpoint: epochs 3 and 4 are trained again
    assert sorted(back.epochs) == [1, 2] and "last" not in back.saved
    assert back.saved["best"]["epoch"] == 2 and back.best_score() == 0.6
    assert not list(tmp_path.glob("*.tmp"))


def test_unreadable_ledger_is_empty(tmp_path):
    (tmp_path / results.RESULT_FILE).write_text("{not json")
    assert results.read(tmp_path).summary() == {"checkpoint": None, "metrics": {}}
    assert results.read(tmp_path / "missing").saved == {}


def test_termination_message_carries_best_and_last_and_stays_small():
    ledger = results.Ledger()
    _run(ledger, {1: 0.4, 2: 0.3}, epochs=2, every=1)
    summary = ledger.summary()
    message = events.success_message(
        summary["metrics"], summary["checkpoint"], 2, best=summary["best"], last=summary["last"]
    )
    assert message["best"]["epoch"] == 1 and message["last"]["epoch"] == 2
    assert message["metrics"]["top_1_accuracy"] == 0.4
    many = {f"metric_{i}": 0.5 for i in range(300)}
    big = events.success_message(
        many,
        "/o/m.ckpt",
        1,
        best={"epoch": 1, "checkpoint": "/o/m.ckpt", "metrics": {**many, "top_1_accuracy": 0.5}},
    )
    text = events.encode_termination(big)
    assert len(text.encode()) < events.TERMINATION_LIMIT
    assert json.loads(text)["best"]["metrics"] == {"top_1_accuracy": 0.5}


def test_saved_config_is_accepted_back_as_config(tmp_path):
    params = config.resolve("glore_res50", None, ["width=8", "layers=[1, 1, 1, 1]"])
    path = tmp_path / "config.yaml"
    config.save_resolved(
        params,
        "glore_res50",
        path,
        run={"num_classes": 3, "data_dir": "/d/train", "eval_dir": "/d/val", "device": "CPU"},
    )
    again = config.resolve("glore_res50", path)
    assert again == params
    model, hyper, run = config.load_run(path)
    assert model == "glore_res50" and hyper == params and run["num_classes"] == 3
    with pytest.raises(ConfigError, match="saved for model 'glore_res50'"):
        config.resolve("resnet50_bam", path)


def _args(**kw) -> argparse.Namespace:
    base = {
        "run": None,
        "model": None,
        "num_classes": None,
        "checkpoint": None,
        "config": None,
        "overrides": [],
        "data_dir": None,
    }
    return argparse.Namespace(**{**base, **kw})


def _fake_run(tmp_path):
    params = config.resolve("resnet50_bam", None, ["width=8", "layers=[1, 1, 1, 1]", "image_size=32"])
    config.save_resolved(
        params,
        "resnet50_bam",
        tmp_path / "config.yaml",
        run={"num_classes": 5, "data_dir": "/zoo/data/train", "eval_dir": "/zoo/data/val"},
    )
    ledger = results.Ledger()
    _run(ledger, {1: 0.4, 2: 0.3}, epochs=2, every=1)
    # Recorded with pod paths: --run finds the files by name inside the directory.
    ledger.saved = {
        k: {**v, "checkpoint": "/zoo/checkpoint/job/" + v["checkpoint"].split("/")[-1]}
        for k, v in ledger.saved.items()
    }
    results.write(ledger, tmp_path)
    for name in ("m-best.ckpt", "m-2.ckpt"):
        (tmp_path / name).write_bytes(b"x")
    return params


def test_run_dir_supplies_model_settings_classes_data_and_best_checkpoint(tmp_path):
    params = _fake_run(tmp_path)
    inputs = rundir.resolve(_args(run=str(tmp_path)), data_flag="data_dir")
    assert inputs.model == "resnet50_bam" and inputs.num_classes == 5 and inputs.params == params
    assert inputs.data_dir == "/zoo/data/val"
    assert inputs.checkpoint == str(tmp_path / "m-best.ckpt") and inputs.recorded["epoch"] == 1
    last = rundir.resolve(
        _args(run=str(tmp_path), checkpoint="last", data_dir="/elsewhere", overrides=["batch_size=2"]),
        data_flag="data_dir",
    )
    assert last.checkpoint == str(tmp_path / "m-2.ckpt") and last.data_dir == "/elsewhere"
    assert last.params["batch_size"] == 2 and last.params["width"] == 8


def test_run_dir_refusals(tmp_path):
    with pytest.raises(ConfigError, match="no config.yaml"):
        rundir.resolve(_args(run=str(tmp_path)))
    _fake_run(tmp_path)
    with pytest.raises(ConfigError, match="trained resnet50_bam"):
        rundir.resolve(_args(run=str(tmp_path), model="glore_res50"))
    with pytest.raises(ConfigError, match="--model, --num-classes, --checkpoint"):
        rundir.resolve(_args())
    with pytest.raises(ConfigError, match="best|last"):
        rundir.resolve(_args(model="glore_res50", num_classes=3, checkpoint="best"))
