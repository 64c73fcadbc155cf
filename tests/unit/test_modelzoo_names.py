"""Our models against the manifests of the ModelZoo's own networks (tests/unit/golden/modelzoo/<model>.json, written
from mindspore-ai/models by benchmarks/modelzoo_equivalence.py --manifests; CI cannot reach the reference code).

Every reference parameter has exactly one of ours with its shape, the order is the reference's, a checkpoint in
the reference's layout loads with every parameter matched, and a mismatch is an error naming what did not match.
"""

from __future__ import annotations

import json
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from zoo_workloads.errors import ConfigError
from zoo_workloads.models import create_model, modelzoo
from zoo_workloads.training import checkpoints

GOLDEN = Path(__file__).parent / "golden" / "modelzoo"
MODELS = sorted(p.stem for p in GOLDEN.glob("*.json"))
# The reference builds resnet50_bam's BAM modules (bam1..3) before layer1; ours sit inside layer1..3, so only
# there does the order differ: loading matches by name, and to_reference writes the reference's order.
ORDER_EXCEPT = {"resnet50_bam": "bam"}


def _manifest(model: str) -> dict:
    return json.loads((GOLDEN / f"{model}.json").read_text())


def _ours(model: str) -> ms.nn.Cell:
    extra = {"clip_length": 16, "image_size": 112} if model == "resnet3d" else {"image_size": 224}
    return create_model(model, _manifest(model)["num_classes"], **extra)


def test_every_covered_model_has_a_manifest():
    assert sorted(modelzoo.RULES) == MODELS


@pytest.mark.parametrize("model", MODELS)
def test_names_and_shapes_equal_the_reference_manifest(model: str):
    ref = _manifest(model)["parameters"]
    ours = [(p.name, tuple(p.shape)) for p in _ours(model).get_parameters()]
    table = modelzoo.reference_names(model, [name for name, _ in ours])
    mapped = {table[name]: shape for name, shape in ours}
    expected = {p["name"]: tuple(p["shape"]) for p in ref}
    assert mapped.keys() == expected.keys(), (
        sorted(mapped.keys() - expected.keys())[:5],
        sorted(expected.keys() - mapped.keys())[:5],
    )
    assert {k: v for k, v in mapped.items() if expected[k] != v} == {}
    skip = ORDER_EXCEPT.get(model)
    ours_order = [table[name] for name, _ in ours if not (skip and table[name].startswith(skip))]
    ref_order = [
        p["name"] for p in sorted(ref, key=lambda p: p["order"]) if not (skip and p["name"].startswith(skip))
    ]
    assert ours_order == ref_order


@pytest.mark.parametrize("model", MODELS)
def test_a_reference_layout_checkpoint_loads_every_parameter(model: str, tmp_path: Path):
    rng = np.random.default_rng(1)
    ref = _manifest(model)["parameters"]
    values = {p["name"]: rng.standard_normal(p["shape"]).astype(np.float32) for p in ref}
    path = tmp_path / "modelzoo.ckpt"
    # As the reference train.py writes it: the network under its names, plus optimizer state.
    entries = [{"name": k, "data": ms.Tensor(v)} for k, v in values.items()]
    entries.append({"name": f"moments.{ref[0]['name']}", "data": ms.Tensor(values[ref[0]["name"]])})
    ms.save_checkpoint(entries, str(path))
    net = _ours(model)
    assert checkpoints.load_network(net, model, path) == len(ref)
    table = modelzoo.reference_names(model, [p.name for p in net.get_parameters()])
    for p in net.get_parameters():
        assert np.array_equal(p.asnumpy(), values[table[p.name]]), p.name
    # ... and ours written in the reference's layout carries the reference's names
    back = modelzoo.to_reference(model, {p.name: p for p in net.get_parameters()}, table)
    assert set(back) == set(values)


def test_a_mismatch_names_every_missing_and_misshapen_parameter(tmp_path: Path):
    net = create_model("resnet50_bam", 3, image_size=32, width=8, layers=[1, 1, 1, 1])
    data = {p.name: p.asnumpy() for p in net.get_parameters()}
    del data["layer2.0.conv1.weight"]
    data["fc.weight"] = np.zeros((5, 256), np.float32)
    data["something.else"] = np.zeros(3, np.float32)
    path = tmp_path / "bad.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in data.items()], str(path))
    before = net.fc.weight.asnumpy().copy()
    with pytest.raises(ConfigError) as err:
        checkpoints.load_network(net, "resnet50_bam", path)
    message = str(err.value)
    assert "2 parameters do not match" in message and str(path) in message
    assert "missing layer2.0.conv1.weight [16, 32, 1, 1]" in message
    assert "shape of fc.weight: checkpoint [5, 256], model [3, 256]" in message
    assert "something.else" in message
    assert np.array_equal(net.fc.weight.asnumpy(), before)  # nothing was loaded


def test_reference_names_are_one_to_one_and_invert():
    names = [
        p.name
        for p in create_model("genet_res50", 3, image_size=32, width=8, layers=[1, 1, 1, 1]).get_parameters()
    ]
    table = modelzoo.reference_names("genet_res50", names)
    assert table["stem.0.weight"] == "conv1.weight" and table["fc.bias"] == "end_point.bias"
    assert table["layer1.0.bn2.gamma"] == "layer1.0.conv2.batchnorm.gamma"
    data = {ref: i for i, ref in enumerate(table.values())}
    data["moments.conv1.weight"] = -1
    back = modelzoo.from_reference("genet_res50", data, names)
    assert back["moments.stem.0.weight"] == -1
    assert [back[name] for name in names] == list(range(len(names)))


def test_pretrained_with_another_class_count_keeps_a_fresh_classifier_only(tmp_path: Path):
    src = create_model("genet_res50", 5, image_size=32, width=8, layers=[1, 1, 1, 1])
    names = [p.name for p in src.get_parameters()]
    data = modelzoo.to_reference("genet_res50", {p.name: p for p in src.get_parameters()}, names)
    path = tmp_path / "imagenet-like.ckpt"
    ms.save_checkpoint([{"name": k, "data": v} for k, v in data.items()], str(path))
    net = create_model("genet_res50", 3, image_size=32, width=8, layers=[1, 1, 1, 1])
    with pytest.raises(ConfigError, match="shape of fc.weight"):
        checkpoints.load_network(net, "genet_res50", path)  # resume/eval: the classifier is required
    assert checkpoints.load_network(net, "genet_res50", path, new_classifier=True) == len(names) - 2
    assert np.array_equal(net.stem[0].weight.asnumpy(), src.stem[0].weight.asnumpy())


def test_same_padding_at_stride_2_pads_bottom_right_only():
    from mindspore import ops

    from zoo_workloads.models.layers.common import conv_nd, max_pool_nd

    x = ms.Tensor(np.random.default_rng(0).standard_normal((1, 1, 6, 6)).astype(np.float32))
    pool = max_pool_nd(2, 3, 2, 1, same=True)(x).asnumpy()
    padded = ops.pad(x, (0, 1, 0, 1), value=-1e9).asnumpy()  # left, right, top, bottom
    expected = np.array([[padded[0, 0, i : i + 3, j : j + 3].max() for j in (0, 2, 4)] for i in (0, 2, 4)])
    assert np.array_equal(pool[0, 0], expected)
    symmetric = max_pool_nd(2, 3, 2, 1)(x).asnumpy()
    assert not np.array_equal(pool, symmetric)  # the grid the references sample is shifted by one pixel
    conv = conv_nd(2, 1, 1, 3, stride=2, same=True)
    w = conv.weight.asnumpy()[0, 0]
    zero_padded = np.pad(x.asnumpy()[0, 0], ((0, 1), (0, 1)))
    manual = np.array([[(zero_padded[i : i + 3, j : j + 3] * w).sum() for j in (0, 2, 4)] for i in (0, 2, 4)])
    assert np.allclose(conv(x).asnumpy()[0, 0], manual, atol=1e-5)


def _official_resnet50_imagenet(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A checkpoint shaped like official/cv/ResNet's ImageNet resnet50 .ckpt: the manifest's names, its 1001-class
    end_point, and optimizer state, as its train.py writes it."""
    rng = np.random.default_rng(2)
    values = {}
    for p in _manifest("multigrain")["parameters"]:
        shape = [1001, *p["shape"][1:]] if p["name"].startswith("end_point.") else p["shape"]
        values[p["name"]] = rng.standard_normal(shape).astype(np.float32)
    entries = [{"name": k, "data": ms.Tensor(v)} for k, v in values.items()]
    entries.append({"name": "moments.conv1.weight", "data": ms.Tensor(values["conv1.weight"])})
    path = tmp_path / "resnet50_ascend_imagenet2012.ckpt"
    ms.save_checkpoint(entries, str(path))
    return path, values


def test_multigrain_starts_from_the_official_resnet50_with_a_fresh_classifier(tmp_path: Path):
    path, values = _official_resnet50_imagenet(tmp_path)
    net = create_model("multigrain", 1000, image_size=224)
    fc_before = net.fc.weight.asnumpy().copy()
    with pytest.raises(
        ConfigError, match=r"shape of fc\.weight: checkpoint \[1001, 2048\], model \[1000, 2048\]"
    ):
        checkpoints.load_network(net, "multigrain", path)  # resume/eval: the classifier is required
    backbone = len(values) - 2
    assert checkpoints.load_network(net, "multigrain", path, new_classifier=True) == backbone
    table = modelzoo.reference_names("multigrain", [p.name for p in net.get_parameters()])
    for p in net.get_parameters():
        if p.name.startswith("fc."):
            continue
        assert np.array_equal(p.asnumpy(), values[table[p.name]]), p.name
    assert np.array_equal(net.fc.weight.asnumpy(), fc_before)  # the head keeps its own initialisation


def test_multigrain_refuses_a_resnet_of_another_depth(tmp_path: Path):
    path, values = _official_resnet50_imagenet(tmp_path)
    # a backbone one block short in layer3 (not a ResNet-50): its conv1-3 and bn1-3 are named, nothing loads
    data = {k: v for k, v in values.items() if not k.startswith("layer3.5.")}
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in data.items()], str(path))
    net = create_model("multigrain", 1000, image_size=224)
    before = net.stem[0].weight.asnumpy().copy()
    with pytest.raises(ConfigError) as err:
        checkpoints.load_network(net, "multigrain", path, new_classifier=True)
    assert "15 parameters do not match" in str(err.value)
    assert "missing layer3.5.conv1.weight [256, 1024, 1, 1]" in str(err.value)
    assert np.array_equal(net.stem[0].weight.asnumpy(), before)


def test_multigrain_is_the_official_resnet50s_function():
    """official/cv/ResNet/src/resnet.py: every conv and the stem pool pad_mode='same', every BN eps 1e-4 (_bn,
    _bn_last); the equivalence benchmark measures the features identical."""
    from mindspore import nn

    net = create_model("multigrain", 10, image_size=64)
    norms = [c for _, c in net.cells_and_names() if isinstance(c, nn.BatchNorm2d)]
    assert len(norms) == 53 and {c.eps for c in norms} == {1e-4}
    convs = [c for _, c in net.cells_and_names() if isinstance(c, nn.Conv2d) and max(c.kernel_size) > 1]
    assert len(convs) == 17 and {c.pad_mode for c in convs} == {"same"}
    assert net.stem[3].pad_mode == "SAME"  # MaxPool2d upper-cases it
