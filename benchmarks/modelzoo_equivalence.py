"""Our models against the MindSpore ModelZoo's own networks: same parameters, same logits.

    .venv/bin/python benchmarks/modelzoo_equivalence.py --modelzoo /path/to/mindspore-ai/models \
        [--models resnet50_bam ...] [--manifests tests/unit/golden/modelzoo]

For each model: build the reference network from <modelzoo>/research/cv/<dir>/src (multigrain: its ResNet-50
backbone from official/cv/ResNet/src; imported via sys.path, as its own train.py does), save its randomly initialised weights with ms.save_checkpoint, load that file into ours
through the same path a job's `pretrained` takes (names renamed by zoo_workloads.models.modelzoo, every parameter
required to match), and run both on the same seeded input in eval mode and in train mode (batch statistics).
Prints max |ours - reference| and the relative difference max|d| / max|reference| per model (multigrain: logits
at gem_p 1, and the layer4 features at the default p). --manifests writes
(name, shape, order) of every reference parameter, which tests/unit/test_modelzoo_names.py checks in CI.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import mindspore as ms
import numpy as np

from zoo_workloads.models import create_model, modelzoo
from zoo_workloads.models.layers.glore import GloreUnit
from zoo_workloads.training import checkpoints

NUM_CLASSES = 10
# model -> (ModelZoo directory, module, builder, our create_model kwargs, input shape without the batch axis).
# BAM's and GENet's references fix 224 px (a 7x7 average pool; depthwise kernels 56/28/14/7); the others run
# smaller inputs to keep the CPU time low.
REFERENCES: dict[str, tuple[str, str, Any, dict[str, Any], tuple[int, ...]]] = {
    "glore_res50": (
        "glore_res",
        "src.glore_resnet",
        lambda m: m.glore_resnet50(class_num=NUM_CLASSES),
        {"image_size": 64},
        (3, 64, 64),
    ),
    "glore_res200": (
        "glore_res",
        "src.glore_resnet",
        lambda m: m.glore_resnet200(class_num=NUM_CLASSES),
        {"image_size": 64},
        (3, 64, 64),
    ),
    "resnet50_bam": (
        "resnet50_bam",
        "src.ResNet50_BAM",
        lambda m: m.ResidualNet("ImageNet", 50, NUM_CLASSES, "BAM"),
        {"image_size": 224},
        (3, 224, 224),
    ),
    "genet_res50": (
        "GENet_Res50",
        "src.GENet",
        lambda m: m.GE_resnet50(class_num=NUM_CLASSES),
        {"image_size": 224},
        (3, 224, 224),
    ),
    # No ModelZoo multigrain: its backbone against the official ResNet-50 (official/cv/ResNet). With gem_p 1 GeM is
    # the reference's average pool (up to its clamp at 1e-6), so the logits compare too; at the default p 3 only
    # the backbone's feature maps are the same function (compared separately, "features" below the table).
    "multigrain": (
        "official/cv/ResNet",
        "src.resnet",
        lambda m: m.resnet50(class_num=NUM_CLASSES),
        {"image_size": 64, "gem_p": 1.0},
        (3, 64, 64),
    ),
    "resnet3d": (
        "resnet3d",
        "src.ResNet3D",
        lambda m: m.generate_model(n_classes=NUM_CLASSES),
        {"image_size": 48, "clip_length": 8},
        (3, 8, 48, 48),
    ),
}


def build_reference(root: Path, model: str) -> ms.nn.Cell:
    """The reference network, its `src` package imported from its ModelZoo directory."""
    directory, module, build, _, _ = REFERENCES[model]
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[name]  # every ModelZoo model calls its package `src`
    sys.path.insert(0, str(root / _directory(directory)))
    argv, sys.argv = (
        sys.argv,
        sys.argv[:1],
    )  # official/cv/ResNet's src.model_utils.config parses sys.argv on import
    try:
        return build(importlib.import_module(module))
    finally:
        sys.path.pop(0)
        sys.argv = argv


def _directory(directory: str) -> str:
    """A model's directory in the checkout: research/cv/<dir>, or the path itself where one is given."""
    return directory if "/" in directory else f"research/cv/{directory}"


def reference_features(ref: ms.nn.Cell, x: ms.Tensor) -> ms.Tensor:
    """official/cv/ResNet's construct up to layer4 (its c5), before the average pool."""
    x = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
    return ref.layer4(ref.layer3(ref.layer2(ref.layer1(x))))


def randomize(net: ms.nn.Cell, seed: int = 0) -> None:
    """Give every parameter a random, well-scaled value. The references' initialisations zero the last BN of each
    residual branch (and of each GloRe unit): compared as initialised, those branches would output 0 in both nets
    and a difference inside them would go unseen."""
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        shape = tuple(p.shape)
        if p.name.endswith(("gamma", "moving_variance")):
            # gamma below 1 keeps eval-mode activations (random moving statistics) finite through 16 blocks
            value = rng.uniform(0.2, 0.6, shape) if p.name.endswith("gamma") else rng.uniform(0.5, 1.5, shape)
        elif p.name.endswith(("beta", "moving_mean", "bias")):
            value = rng.normal(0.0, 0.1, shape)
        else:  # conv / dense weights: He-normal over the fan-in
            fan_in = max(int(np.prod(shape[1:])), 1)
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        p.set_data(ms.Tensor(value.astype(np.float32)))


def manifest(net: ms.nn.Cell) -> list[dict[str, Any]]:
    """(order, name, shape) of every parameter, in the network's own order."""
    return [{"order": i, "name": p.name, "shape": list(p.shape)} for i, p in enumerate(net.get_parameters())]


def compare(modelzoo_dir: Path, model: str, manifests: Path | None, batch: int = 2) -> dict[str, Any]:
    ref = build_reference(modelzoo_dir, model)
    if manifests is not None:
        manifests.mkdir(parents=True, exist_ok=True)
        (manifests / f"{model}.json").write_text(
            json.dumps(
                {
                    "model": model,
                    "source": f"mindspore-ai/models {_directory(REFERENCES[model][0])}",
                    "num_classes": NUM_CLASSES,
                    "parameters": manifest(ref),
                },
                indent=1,
            )
            + "\n"
        )
    randomize(ref)
    _, _, _, kwargs, shape = REFERENCES[model]
    ours = create_model(model, NUM_CLASSES, **kwargs)
    for _, cell in ours.cells_and_names():
        if isinstance(cell, GloreUnit):
            cell.cast_fp16 = True  # the reference's float16 matmuls (layers/glore.py)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{model}-modelzoo.ckpt"
        ms.save_checkpoint(ref, str(path))
        loaded = checkpoints.load_network(ours, model, path)  # raises on any mismatch
    # The other direction: ours, written in the reference's layout, loads into a fresh reference network with
    # nothing left out (what its eval.py does with a checkpoint).
    names = [p.name for p in ours.get_parameters()]
    back = modelzoo.to_reference(model, {p.name: p for p in ours.get_parameters()}, names)
    not_loaded, _ = ms.load_param_into_net(build_reference(modelzoo_dir, model), back, strict_load=True)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32))
    row: dict[str, Any] = {
        "model": model,
        "parameters": loaded,
        "input": list(x.shape),
        "reverse_not_loaded": len(not_loaded),
    }
    for mode, train in (("eval", False), ("train", True)):
        ref.set_train(train)
        ours.set_train(train)
        a = ref(x).asnumpy()
        b = ours(x)
        b = (b[0] if isinstance(b, tuple) else b).asnumpy()
        diff = float(np.max(np.abs(a - b)))
        row[f"{mode}_max_abs"] = diff
        row[f"{mode}_rel"] = diff / max(float(np.max(np.abs(a))), 1e-12)
        row[f"{mode}_max_ref"] = float(np.max(np.abs(a)))
    if model == "multigrain":
        # the backbone at the default GeM p: ours, loaded from the same file, against the reference's c5
        default = create_model(model, NUM_CLASSES, image_size=kwargs["image_size"])
        ms.load_param_into_net(default, {p.name: p for p in ours.get_parameters()}, strict_load=True)
        for mode, train in (("eval", False), ("train", True)):
            ref.set_train(train)
            default.set_train(train)
            a = reference_features(ref, x).asnumpy()
            b = default.forward_features(x).asnumpy()
            row[f"features_{mode}_rel"] = float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(a))), 1e-12)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modelzoo", required=True, type=Path, help="a checkout of mindspore-ai/models")
    parser.add_argument("--models", nargs="*", default=list(REFERENCES), choices=list(REFERENCES))
    parser.add_argument("--manifests", type=Path, help="write <model>.json parameter manifests here")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of the table")
    args = parser.parse_args(argv)
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    ms.set_seed(0)
    np.random.seed(0)
    rows = [compare(args.modelzoo, model, args.manifests) for model in args.models]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(
        "| model | params loaded | ours -> reference: not loaded | input | max abs logit (eval) | eval max abs diff | eval rel | train max abs diff "
        "| train rel |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['parameters']} | {r['reverse_not_loaded']} | {'x'.join(map(str, r['input']))} | {r['eval_max_ref']:.3g} "
            f"| {r['eval_max_abs']:.2e} "
            f"| {r['eval_rel']:.2e} | {r['train_max_abs']:.2e} | {r['train_rel']:.2e} |"
        )
    for r in rows:
        if "features_eval_rel" in r:
            print(
                f"\n{r['model']} backbone features (default GeM p, layer4 output): eval rel "
                f"{r['features_eval_rel']:.2e}, train rel {r['features_train_rel']:.2e}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
