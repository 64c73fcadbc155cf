"""Training-step throughput of the zoo's models: step time and images (clips) per second.

    .venv/bin/python benchmarks/models.py --image-size 64 --batch 8 --steps 5 [--models genet_res50 ...]
        [--width 64] [--layers 3 4 6 3] [--mode graph|pynative] [--device CPU|GPU|Ascend] [--json]

One step = forward, the model's own loss (zoo_workloads.losses.create_loss), backward and a Momentum update, on
random data. The first `--warmup` steps (graph compilation) are timed separately and left out of the rate.
`cpu ms` is the process's CPU time per step: on a shared machine it varies far less than the wall time.
Video models take clips of --clip-length frames at the same spatial size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np


def bench_model(
    name: str,
    *,
    image_size: int,
    batch: int,
    steps: int,
    warmup: int,
    width: int,
    layers: list[int] | None,
    clip_length: int,
    num_classes: int,
) -> dict[str, Any]:
    """Build `name`, run warmup + steps training steps on random data; plain-data timings."""
    import mindspore as ms
    from mindspore import Tensor, nn

    from zoo_workloads import config
    from zoo_workloads.losses import create_loss
    from zoo_workloads.models import count_params, create_model, model_kwargs, model_spec

    spec = model_spec(name)
    hparams = config.default_hyperparameters(name)
    kwargs = model_kwargs(name, hparams)
    if spec.input_kind == "video":
        kwargs["clip_length"] = clip_length
        shape: tuple[int, ...] = (batch, 3, clip_length, image_size, image_size)
    else:
        shape = (batch, 3, image_size, image_size)
    model = create_model(name, num_classes, image_size=image_size, width=width, layers=layers, **kwargs)
    net = nn.WithLossCell(model, create_loss(name, num_classes, hparams))
    step = nn.TrainOneStepCell(net, nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9))
    step.set_train()
    rng = np.random.default_rng(0)
    images = Tensor(rng.normal(size=shape).astype(np.float32))
    # Labels in groups of three, as repeated augmentation builds MultiGrain's batches.
    labels = Tensor((np.arange(batch) // 3 % num_classes).astype(np.int32))
    start = time.perf_counter()
    for _ in range(warmup):
        step(images, labels).asnumpy()
    warm_s = time.perf_counter() - start
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = step(images, labels)
    final = float(loss.asnumpy())  # waits for the device
    step_s = (time.perf_counter() - start) / steps
    cpu_s = (time.process_time() - cpu_start) / steps
    return {
        "model": name,
        "input": list(shape),
        "parameters": count_params(model),
        "warmup_s": round(warm_s, 3),
        "step_ms": round(step_s * 1000, 1),
        "cpu_ms": round(cpu_s * 1000, 1),
        "images_per_second": round(batch / step_s, 2),
        "loss": final,
        "mode": "graph" if ms.get_context("mode") == ms.GRAPH_MODE else "pynative",
        "device": ms.get_context("device_target"),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--clip-length", type=int, default=8, help="frames per clip for video models")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--width", type=int, default=64, help="trunk base width (64 = full size)")
    parser.add_argument(
        "--layers", type=int, nargs=4, default=None, help="blocks per stage (default: the paper's)"
    )
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--mode", choices=["graph", "pynative"], default="graph")
    parser.add_argument("--device", choices=["CPU", "GPU", "Ascend"], default="CPU")
    parser.add_argument("--json", action="store_true", help="one JSON object per model instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 64 on a bad argument (unknown model, non-positive sizes)."""
    args = _parser().parse_args(argv)
    import mindspore as ms

    from zoo_workloads.models import list_models

    names = args.models or list_models()
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        print(f"--models: unknown {unknown}; known: {', '.join(list_models())}", file=sys.stderr)
        return 64
    for field in ("image_size", "batch", "steps", "num_classes", "clip_length"):
        if getattr(args, field) < 1:
            print(f"--{field.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 64
    ms.set_context(mode=ms.GRAPH_MODE if args.mode == "graph" else ms.PYNATIVE_MODE)
    if ms.get_context("device_target") != args.device:  # set_device fails once the runtime has started
        ms.set_device(args.device)
    if not args.json:
        print(
            f"{'model':<14} {'input':<22} {'params':>10} {'warmup s':>9} {'step ms':>9} {'cpu ms':>9} {'img/s':>8}"
        )
    for name in names:
        row = bench_model(
            name,
            image_size=args.image_size,
            batch=args.batch,
            steps=args.steps,
            warmup=args.warmup,
            width=args.width,
            layers=args.layers,
            clip_length=args.clip_length,
            num_classes=args.num_classes,
        )
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            shape = "x".join(str(n) for n in row["input"])
            print(
                f"{name:<14} {shape:<22} {row['parameters']:>10,} {row['warmup_s']:>9.1f} "
                f"{row['step_ms']:>9.1f} {row['cpu_ms']:>9.1f} {row['images_per_second']:>8.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
