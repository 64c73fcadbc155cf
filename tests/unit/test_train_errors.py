"""zoo-train's failure exits through the real entry point: one line on stderr, termination message, code."""

from pathlib import Path

import pytest
from zoo_train_helpers import run_entry

from zoo_workloads.data import synth


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    synth.write_synthetic("imagefolder", root, classes=2, per_class=2, size=16)
    return root


def _assert_failed(result, code: int, reason: str, fragment: str) -> None:
    assert result.code == code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr
    assert result.termination is not None
    assert result.termination["status"] == "failed" and result.termination["reason"] == reason
    assert fragment in result.termination["message"]


def test_unknown_hyperparameter_exits_64(tmp_path, tiny_images):
    result = run_entry(
        "zoo-train",
        [
            "--model",
            "resnet50_bam",
            "--data-dir",
            str(tiny_images / "train"),
            "--num-classes",
            "2",
            "--output-dir",
            str(tmp_path / "o"),
            "--device",
            "CPU",
            "--set",
            "learning_rate=0.1",
        ],
        tmp_path,
    )
    _assert_failed(result, 64, "ConfigError", "unknown hyperparameter 'learning_rate'")
    assert result.termination["retryable"] is False


def test_missing_dataset_exits_66(tmp_path):
    result = run_entry(
        "zoo-train",
        [
            "--model",
            "resnet50_bam",
            "--data-dir",
            str(tmp_path / "absent"),
            "--num-classes",
            "2",
            "--output-dir",
            str(tmp_path / "o"),
            "--device",
            "CPU",
        ],
        tmp_path,
    )
    _assert_failed(result, 66, "DatasetMissing", "does not exist")


def test_thor_on_cpu_exits_64(tmp_path, tiny_images):
    # multigrain's default optimizer is THOR, which has no CPU kernels
    result = run_entry(
        "zoo-train",
        [
            "--model",
            "multigrain",
            "--data-dir",
            str(tiny_images / "train"),
            "--num-classes",
            "2",
            "--output-dir",
            str(tmp_path / "o"),
            "--device",
            "CPU",
        ],
        tmp_path,
    )
    _assert_failed(result, 64, "ConfigError", "thor has no CPU kernels")


def test_usage_error_exits_64(tmp_path):
    result = run_entry("zoo-train", ["--data-dir", "x"], tmp_path)
    assert result.code == 64
    assert "--model" in result.stderr
    assert result.termination["reason"] == "ConfigError"


def test_launcher_without_command_exits_64(tmp_path):
    result = run_entry("zoo-launch", ["zoo-train"], tmp_path)
    assert result.code == 64 and "missing `--`" in result.stderr


def test_value_the_model_refuses_exits_64(tmp_path, tiny_images):
    result = run_entry(
        "zoo-train",
        [
            "--model",
            "resnet50_bam",
            "--data-dir",
            str(tiny_images / "train"),
            "--num-classes",
            "2",
            "--output-dir",
            str(tmp_path / "o"),
            "--device",
            "CPU",
            "--set",
            "width=7",
        ],
        tmp_path,
    )
    _assert_failed(result, 64, "ConfigError", "width")


@pytest.mark.parametrize("item", ["label_smoothing=5", "momentum=-3", "num_parallel_workers=0", "lr_max=-1"])
def test_out_of_range_values_exit_64_not_retryable(tmp_path, tiny_images, item):
    """Issue 11: these exited 1 (retryable: the gang restarted backoffLimit times) or trained with lr_max -1."""
    result = run_entry(
        "zoo-train",
        [
            "--model",
            "resnet50_bam",
            "--data-dir",
            str(tiny_images / "train"),
            "--num-classes",
            "2",
            "--output-dir",
            str(tmp_path / "o"),
            "--device",
            "CPU",
            "--set",
            item,
        ],
        tmp_path,
    )
    key = item.split("=")[0]
    _assert_failed(result, 64, "ConfigError", f"hyperparameter {key}: ")
    assert "is out of range" in result.termination["message"] and result.termination["retryable"] is False
