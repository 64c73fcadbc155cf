"""Every registered model (list_models() drives these): registry, forward shapes, one training step, and the
trainable-parameter count at full size against the published figure."""

from __future__ import annotations

import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from zoo_workloads import config
from zoo_workloads.losses import create_loss
from zoo_workloads.models import (
    count_params,
    create_model,
    freeze_except,
    list_models,
    model_kwargs,
    model_spec,
)
from zoo_workloads.models.layers.glore import GloreUnit

ms.set_context(mode=ms.PYNATIVE_MODE)

SMALL = {"image_size": 32, "width": 8, "layers": [1, 1, 1, 1]}
NUM_CLASSES = 5


def _small_input(name: str, batch: int) -> Tensor:
    shape = (batch, 3, 8, 32, 32) if model_spec(name).input_kind == "video" else (batch, 3, 32, 32)
    return Tensor(np.random.default_rng(0).normal(size=shape).astype(np.float32))


def _small_model(name: str) -> nn.Cell:
    kwargs = model_kwargs(name, config.default_hyperparameters(name))
    if model_spec(name).input_kind == "video":
        kwargs["clip_length"] = 8
    return create_model(name, NUM_CLASSES, **SMALL, **kwargs)


def test_registry_matches_the_model_defaults() -> None:
    assert list_models() == config.model_names()


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet51'.*glore_res50.*resnet3d"):
        create_model("resnet51", 10)
    with pytest.raises(ValueError, match="known models"):
        model_spec("nope")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 10, "width": 7}, "width"),
        ({"num_classes": 10, "layers": [1, 1, 1]}, "layers"),
        ({"num_classes": 10, "image_size": 8}, "image_size"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        create_model("glore_res50", **kwargs)


def test_unknown_model_kwarg_is_rejected() -> None:
    with pytest.raises(TypeError, match="ge_extra"):
        create_model("glore_res50", 10, **SMALL, ge_extra=True)


def test_model_kwargs_pick_only_the_models_hyperparameters() -> None:
    hparams = config.default_hyperparameters("genet_res50")
    assert model_kwargs("genet_res50", hparams) == {"ge_extra": True, "ge_mlp": True}
    assert model_kwargs("glore_res50", hparams) == {}


@pytest.mark.parametrize("name", list_models())
def test_forward_shapes(name: str) -> None:
    model = _small_model(name)
    model.set_train(False)
    out = model(_small_input(name, 2))
    if model_spec(name).outputs == "logits+embedding":
        logits, embedding = out
        assert embedding.shape == (2, 8 * 32)  # the width-8 trunk ends with 8 * 8 * 4 channels
        norms = np.linalg.norm(embedding.asnumpy(), axis=1)
        np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    else:
        logits = out
    assert logits.shape == (2, NUM_CLASSES)
    assert np.isfinite(logits.asnumpy()).all()


@pytest.mark.parametrize("name", list_models())
def test_one_training_step_changes_weights(name: str) -> None:
    model = _small_model(name)
    loss_fn = create_loss(name, NUM_CLASSES, config.default_hyperparameters(name))
    net = nn.WithLossCell(model, loss_fn)
    params = net.trainable_params()
    before = {p.name: p.asnumpy().copy() for p in params}
    step = nn.TrainOneStepCell(net, nn.Momentum(params, learning_rate=0.05, momentum=0.9))
    step.set_train()
    # Repeated-augmentation style labels: every class three times, so the margin loss has positives.
    labels = Tensor(np.array([0, 0, 0, 1, 1, 1], np.int32))
    # Two steps: residual branches that start at zero (gamma-0 BN, zero extend conv) pass gradient to the
    # layers before them only once their last layer has moved.
    images = _small_input(name, 6)
    losses = [float(step(images, labels).asnumpy()) for _ in range(2)]
    assert all(math.isfinite(v) and v > 0 for v in losses)
    unchanged = {p.name for p in params if np.array_equal(before[p.name], p.asnumpy())}
    # Every parameter learns, except biases directly followed by a BatchNorm (BAM's reference has them; BN
    # cancels a constant shift, so their gradient is exactly zero) and the margin loss's beta: a random tiny net
    # maps all images close together, so every pos and neg term is active and beta's +1/-1 gradients cancel
    # (test_losses checks that beta learns).
    assert not {n for n in unchanged if not _bias_before_bn(n)}, sorted(unchanged)


def _bias_before_bn(param_name: str) -> bool:
    return param_name == "margin.beta" or param_name.endswith(
        (
            "spatial_gate.body.0.bias",
            "spatial_gate.body.3.bias",
            "spatial_gate.body.6.bias",
            "channel_gate.fc1.bias",
        )
    )


def _glore_unit_params(channels: int) -> int:
    return count_params(GloreUnit(channels, channels // 4))


# Published trainable-parameter counts at the design size, and the tolerance: the figures are quoted to 3
# significant digits (rounding alone is up to 0.2%) and ImageNet heads of 1000 vs 1001 classes differ by 2k.
REFERENCE_COUNTS = {
    # seed 000 README: 30.5M.
    "glore_res50": (1000, 30.5e6, 0.005),
    # seed 003 README: 25.5M (ResNet-50's 25.56M with GeM, which has no parameters at fixed p).
    "multigrain": (1000, 25.5e6, 0.005),
    # BAM paper (arXiv 1807.06514) Table 4: ResNet-50 + BAM, 25.92M.
    "resnet50_bam": (1000, 25.92e6, 0.005),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_COUNTS))
def test_full_size_parameter_count_matches_reference(name: str) -> None:
    classes, expected, tolerance = REFERENCE_COUNTS[name]
    measured = count_params(create_model(name, classes))
    assert abs(measured - expected) <= tolerance * expected, f"{name}: {measured:,} vs {expected:,.0f}"


def test_resnet3d_parameter_count() -> None:
    # Hara et al. 3D ResNet-50 (arXiv 2004.04968 / 1711.09577): 46.2M without the classifier; the 400-class
    # (Kinetics) head adds 2048 * 400 + 400.
    model = create_model("resnet3d", 400)
    trunk = count_params(model) - (2048 * 400 + 400)
    assert abs(trunk - 46.2e6) <= 0.005 * 46.2e6, trunk


def test_glore_res200_parameter_count() -> None:
    # Pre-activation ResNet-200 (arXiv 1603.05027): 64.7M with the 1000-class head; plus two GloRe units of
    # 512 channels (Res3) and three of 1024 channels (Res4).
    measured = count_params(create_model("glore_res200", 1000))
    units = 2 * _glore_unit_params(512) + 3 * _glore_unit_params(1024)
    assert abs(measured - units - 64.7e6) <= 0.005 * 64.7e6, measured - units


def test_glore_res50_has_three_units_and_res200_five() -> None:
    def units(model: nn.Cell) -> int:
        return sum(isinstance(c, GloreUnit) for _, c in model.cells_and_names())

    assert units(create_model("glore_res50", 10, image_size=64, width=8)) == 3
    assert units(create_model("glore_res200", 10, image_size=64, width=8)) == 5
    # Reduced depth keeps one unit per stage that has them.
    assert units(create_model("glore_res200", 10, **SMALL)) == 2


def test_freeze_except_keeps_only_the_last_stage_and_head() -> None:
    model = create_model("resnet3d", 4, **SMALL, clip_length=4)
    total = len(model.trainable_params())
    kept = freeze_except(model)
    assert kept and all(p.name.startswith(("layer4.", "fc.")) for p in kept)
    assert len(kept) < total
    with pytest.raises(ValueError, match="no parameter"):
        freeze_except(create_model("resnet3d", 4, **SMALL, clip_length=4), ["head."])


@pytest.fixture
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        yield
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_training_step_compiles_in_graph_mode(name: str, graph_mode: None) -> None:
    # Training on Ascend/GPU runs in GRAPH mode, which compiles construct(): every model and loss must compile.
    model = _small_model(name)
    net = nn.WithLossCell(model, create_loss(name, NUM_CLASSES, config.default_hyperparameters(name)))
    step = nn.TrainOneStepCell(net, nn.Momentum(net.trainable_params(), learning_rate=0.05, momentum=0.9))
    step.set_train()
    labels = Tensor(np.array([0, 0, 0, 1, 1, 1], np.int32))
    losses = [float(step(_small_input(name, 6), labels).asnumpy()) for _ in range(3)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]  # the same batch three times: the loss must go down


def test_create_model_builds_the_smallest_shapes_the_table_allows() -> None:
    """Whatever the hyperparameter table accepts for image_size and layers, create_model builds (issue 20)."""
    from zoo_workloads import config as model_config
    from zoo_workloads.models import create_model

    low = int(model_config.PARAMS["image_size"].minimum or 0)
    assert model_config.check("image_size", low) is None and model_config.check("image_size", low - 1)
    assert model_config.check("layers", [1] * model_config.STAGES) is None
    assert model_config.check("layers", [1] * (model_config.STAGES - 1))
    import mindspore as ms
    import numpy as np

    net = create_model("resnet50_bam", 4, image_size=low, width=8, layers=[1] * model_config.STAGES)
    net.set_train(False)
    out = net(ms.Tensor(np.zeros((1, 3, low, low), np.float32)))
    assert tuple(out.shape) == (1, 4)
