"""Resolving a run's hyperparameters: defaults < --config file < --set, and the errors for bad input."""

import pytest

from zoo_workloads import config
from zoo_workloads.errors import ConfigError


def test_set_overrides_parse_yaml_scalars():
    params = config.resolve("resnet50_bam", None, ["lr_max=0.5", "layers=[1, 1, 1, 1]", "autoaugment=true"])
    assert params["lr_max"] == 0.5
    assert params["layers"] == [1, 1, 1, 1]
    assert params["autoaugment"] is True
    assert params["epochs"] == 160  # untouched model default


def test_int_for_float_default_becomes_float():
    assert config.resolve("resnet50_bam", None, ["lr_max=1"])["lr_max"] == 1.0
    assert isinstance(config.resolve("resnet50_bam", None, ["lr_max=1"])["lr_max"], float)


def test_config_file_then_set(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nbatch_size: 16\n")
    params = config.resolve("glore_res50", path, ["epochs=4"])
    assert params["batch_size"] == 16
    assert params["epochs"] == 4


def test_unknown_key_names_key_and_allowed_ones():
    with pytest.raises(ConfigError) as info:
        config.resolve("resnet50_bam", None, ["learning_rate=0.1"])
    message = str(info.value)
    assert "'learning_rate'" in message and "lr_max" in message and "\n" not in message


def test_unknown_key_in_config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("ge_mlp: false\n")  # a genet key, not a BAM one
    with pytest.raises(ConfigError, match="ge_mlp"):
        config.resolve("resnet50_bam", path)


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("lr_mode=exp", "lr_mode"),
        ("optimizer=adam", "optimizer"),
        ("epochs=0", "epochs"),
        ("batch_size=abc", "batch_size"),
        ("autoaugment=1", "autoaugment"),
        ("layers=[1, 0, 1, 1]", "layers"),
        ("noequals", "key=value"),
    ],
)
def test_bad_values_are_config_errors(item, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config.resolve("resnet50_bam", None, [item])


def test_unknown_model_is_config_error():
    with pytest.raises(ConfigError, match="vgg16"):
        config.resolve("vgg16")


def test_config_file_must_be_mapping(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        config.resolve("resnet50_bam", path)


def test_saved_config_round_trips(tmp_path):
    import yaml

    params = config.resolve("resnet3d", None, ["epochs=2"])
    config.save_resolved(params, "resnet3d", tmp_path / "config.yaml")
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["model"] == "resnet3d" and saved["epochs"] == 2 and saved["clip_length"] == 16
