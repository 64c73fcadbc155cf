"""The model-defaults source that both the workloads and the operator read."""

import pytest

from zoo_workloads import config

SEED_MODELS = ["genet_res50", "glore_res200", "glore_res50", "multigrain", "resnet3d", "resnet50_bam"]


def test_every_model_has_defaults():
    assert config.model_names() == SEED_MODELS


@pytest.mark.parametrize(
    ("model", "key", "value"),
    [
        ("glore_res50", "lr_mode", "poly"),
        ("glore_res50", "lr_max", 0.6),
        ("resnet50_bam", "epochs", 160),
        ("resnet50_bam", "lr_max", 0.02),
        ("genet_res50", "batch_size", 256),
        ("multigrain", "optimizer", "thor"),
        ("resnet3d", "image_size", 112),
        ("resnet3d", "weight_decay", 0.001),
    ],
)
def test_seed_values_override_common(model, key, value):
    assert config.default_hyperparameters(model)[key] == value


def test_common_keys_present_for_every_model():
    for model in config.model_names():
        params = config.default_hyperparameters(model)
        assert {"epochs", "batch_size", "lr_mode", "momentum", "weight_decay"} <= params.keys()


def test_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError, match="resnet50_bam"):
        config.default_hyperparameters("vgg16")
