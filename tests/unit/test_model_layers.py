"""The layer modules (GloRe, BAM, gather-excite, GeM) and the trunk's hooks, one idea at a time."""

from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from zoo_workloads.models import count_params, create_model
from zoo_workloads.models.layers.bam import BAM
from zoo_workloads.models.layers.gather_excite import GatherExcite
from zoo_workloads.models.layers.gem import GeM
from zoo_workloads.models.layers.glore import GloreUnit
from zoo_workloads.models.resnet import ResNet, l2_normalize, scale_positions

ms.set_context(mode=ms.PYNATIVE_MODE)
RNG = np.random.default_rng(0)


def _x(*shape: int, positive: bool = False) -> Tensor:
    data = RNG.random(shape) + 0.1 if positive else RNG.normal(size=shape)
    return Tensor(data.astype(np.float32))


# --- GloRe ---------------------------------------------------------------------------------------------------


def test_glore_unit_starts_as_identity_and_keeps_shape() -> None:
    unit = GloreUnit(32, 8)
    unit.set_train(False)
    x = _x(2, 32, 5, 6)
    np.testing.assert_allclose(unit(x).asnumpy(), x.asnumpy(), atol=1e-6)


def test_glore_unit_reasons_over_nodes() -> None:
    unit = GloreUnit(32, 8)
    unit.set_train(False)
    conv = unit.conv_extend[2]
    conv.weight.set_data(Tensor(RNG.normal(size=conv.weight.shape).astype(np.float32)))
    x = _x(2, 32, 5, 6)
    y = unit(x).asnumpy()
    assert y.shape == (2, 32, 5, 6)
    assert not np.allclose(y, x.asnumpy())
    # A global unit: changing one pixel changes the output everywhere (1x1 convs alone could not).
    x2 = x.asnumpy().copy()
    x2[:, :, 0, 0] += 5.0
    delta = np.abs(unit(Tensor(x2)).asnumpy() - y)
    assert (delta[:, :, 4, 5] > 1e-6).any()


def test_glore_unit_parameters() -> None:
    c, mid = 1024, 256
    s, n = 2 * mid, mid
    # two pre-activation BNs over C, the state/projection convs, the GCN (node and state convs, no biases),
    # the extend BN over S and conv back to C.
    expected = 2 * 2 * c + c * s + c * n + n * n + s * s + 2 * s + s * c
    assert count_params(GloreUnit(c, mid)) == expected


# --- BAM -----------------------------------------------------------------------------------------------------


def test_bam_gate_lies_in_one_to_two() -> None:
    bam = BAM(64)
    bam.set_train(False)
    x = _x(2, 64, 8, 8) * 10.0
    gate = bam.attention(x).asnumpy()
    assert gate.shape == (2, 64, 8, 8)
    assert gate.min() >= 1.0 and gate.max() <= 2.0
    assert gate.std() > 0  # not a constant
    np.testing.assert_allclose(bam(x).asnumpy(), x.asnumpy() * gate, rtol=1e-5)


def test_bam_spatial_gate_keeps_size_with_dilation() -> None:
    bam = BAM(32)
    bam.set_train(False)
    assert bam.spatial_gate(_x(1, 32, 9, 7)).shape == (1, 1, 9, 7)


# --- Gather-excite -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(7, 7), (5, 5), (14, 14)])
@pytest.mark.parametrize("pre_downsample", [False, True])
def test_ge_gather_covers_the_whole_map(size: tuple[int, int], pre_downsample: bool) -> None:
    ge = GatherExcite(32, size, extra=True, mlp=True, pre_downsample=pre_downsample)
    ge.set_train(False)
    x = _x(2, 32, *size)
    gate = ge.gate(x).asnumpy()
    assert gate.shape == (2, 32, 1, 1)
    assert (gate > 0).all() and (gate < 1).all()
    assert ge(x).shape == (2, 32, *size)


def test_ge_variant_parameter_differences() -> None:
    c, k = 64, (7, 7)
    minus = GatherExcite(c, k, extra=False, mlp=False)
    theta = GatherExcite(c, k, extra=True, mlp=False)
    plus = GatherExcite(c, k, extra=True, mlp=True)
    assert count_params(minus) == 0
    assert count_params(theta) == c * 7 * 7 + 2 * c  # depthwise kernel over the map + its BN
    assert count_params(plus) - count_params(theta) == 2 * c * (c // 16)  # the excite MLP, no biases
    layer1 = GatherExcite(c, (56, 56), extra=True, mlp=False, pre_downsample=True)
    assert count_params(layer1) == c * c * 9 + 2 * c + c * 28 * 28 + 2 * c  # full 3x3/2 conv, then k = 28


def test_ge_theta_minus_mean_gather_is_exact() -> None:
    ge = GatherExcite(8, (4, 4), extra=False, mlp=False)
    x = _x(1, 8, 4, 4)
    mean = x.asnumpy().mean(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(ge(x).asnumpy(), x.asnumpy() / (1 + np.exp(-mean)), rtol=1e-5)


def test_genet_variants_at_full_size() -> None:
    def count(extra: bool, mlp: bool) -> int:
        return count_params(create_model("genet_res50", 1000, ge_extra=extra, ge_mlp=mlp))

    minus, theta, plus = count(False, False), count(True, False), count(True, True)
    assert minus == 25_557_032  # ResNet-50's well-known count: GE-theta-minus adds no parameters
    stages = [(256, 56, 3), (512, 28, 4), (1024, 14, 6), (2048, 7, 3)]  # channels, map size at 224, blocks
    gather = 3 * (256 * 256 * 9 + 2 * 256 + 256 * 28 * 28 + 2 * 256)
    gather += sum(b * (c * s * s + 2 * c) for c, s, b in stages[1:])
    assert theta - minus == gather
    assert plus - theta == sum(b * 2 * c * (c // 16) for c, _, b in stages)


def test_genet_kernels_follow_the_input_size() -> None:
    model = create_model("genet_res50", 3, image_size=64, width=8, layers=[1, 1, 1, 1])
    model.set_train(False)
    assert model(_x(1, 3, 64, 64)).shape == (1, 3)
    # At 64 px the stages are 16, 8, 4, 2 wide; layer1 first halves to 8.
    kernels = [
        cell.weight.shape[-1]
        for name, cell in model.cells_and_names()
        if isinstance(cell, nn.Conv2d) and cell.group > 1
    ]
    assert kernels == [8, 8, 4, 2]


# --- GeM -----------------------------------------------------------------------------------------------------


def test_gem_with_p_one_is_average_pooling() -> None:
    x = _x(2, 16, 5, 5, positive=True)
    np.testing.assert_allclose(GeM(p=1.0)(x).asnumpy(), x.asnumpy().mean(axis=(2, 3)), rtol=1e-5)


def test_gem_p3_formula_and_large_p_tends_to_max() -> None:
    x = _x(2, 16, 5, 5, positive=True)
    arr = x.asnumpy()
    np.testing.assert_allclose(GeM(p=3.0)(x).asnumpy(), np.cbrt((arr**3).mean(axis=(2, 3))), rtol=1e-4)
    big = GeM(p=60.0)(x).asnumpy()
    assert np.all(big <= arr.max(axis=(2, 3)) + 1e-5)
    assert np.all(big >= 0.9 * arr.max(axis=(2, 3)))


def test_gem_rejects_non_positive_p() -> None:
    with pytest.raises(ValueError, match="gem_p"):
        GeM(p=0.0)


# --- The trunk -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", ["plain", "deep"])
@pytest.mark.parametrize("shortcut", ["conv", "avgdown"])
@pytest.mark.parametrize("size", [32, 45])
def test_trunk_tracks_feature_size_for_odd_inputs(stem: str, shortcut: str, size: int) -> None:
    net = ResNet(4, layers=[1, 1, 1, 1], width=8, input_size=(size, size), stem=stem, shortcut=shortcut)
    net.set_train(False)
    features = net.forward_features(_x(1, 3, size, size))
    assert features.shape == (1, 256, *net.feature_size)


def test_scale_positions_keeps_one_module_per_stage() -> None:
    assert scale_positions({2: [0, 2, 4]}, [3, 4, 6, 3], [3, 4, 6, 3]) == {2: [0, 2, 4]}
    assert scale_positions({2: [0, 2, 4]}, [3, 4, 6, 3], [1, 1, 1, 1]) == {2: [0]}
    assert scale_positions({1: [11, 17], 2: [15, 23, 31]}, [3, 24, 36, 3], [2, 4, 6, 2]) == {
        1: [1, 2],
        2: [2, 3, 5],
    }


def test_trunk_rejects_bad_layers() -> None:
    with pytest.raises(ValueError, match="layers"):
        ResNet(4, layers=[1, 1, 1])


def test_l2_normalize_matches_numpy() -> None:
    x = _x(3, 7)
    arr = x.asnumpy()
    np.testing.assert_allclose(
        l2_normalize(x).asnumpy(), arr / np.linalg.norm(arr, axis=1, keepdims=True), rtol=1e-5
    )
    assert np.isfinite(l2_normalize(Tensor(np.zeros((1, 4), np.float32))).asnumpy()).all()
