"""`zoo-models list` and `zoo-models info` through their entry point function."""

from __future__ import annotations

import json

import pytest

from zoo_workloads import config
from zoo_workloads.cli.models import main
from zoo_workloads.models import list_models


def test_list_prints_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert capsys.readouterr().out.split() == list_models()


def test_info_json_has_full_size_parameters_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "glore_res50", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input_shape"] == [3, 224, 224]
    assert info["num_classes"] == 1000
    assert abs(info["trainable_parameters"] - 30.5e6) < 0.005 * 30.5e6
    assert info["hyperparameters"] == config.default_hyperparameters("glore_res50")


def test_info_text_with_num_classes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "resnet3d", "--num-classes", "101"]) == 0
    out = capsys.readouterr().out
    assert "video (3, 16, 112, 112)" in out
    assert "101 classes" in out
    params = int(out.split("parameters:")[1].split("(")[0].replace(",", ""))
    # The default head is Kinetics' 400 classes; UCF101's 101 has (400 - 101) * (2048 + 1) fewer parameters.
    assert main(["info", "resnet3d", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["num_classes"] == 400
    assert default["trainable_parameters"] - params == 299 * 2049


def test_info_unknown_model_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "resnet51"]) == 64
    err = capsys.readouterr().err
    assert "unknown model 'resnet51'" in err and "glore_res50" in err


def test_info_bad_num_classes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "multigrain", "--num-classes", "0"]) == 64
    assert "--num-classes" in capsys.readouterr().err
