"""zoo-export: export a checkpoint to MINDIR (or AIR/ONNX where MindSpore supports it) for inference.

    zoo-export --model M --num-classes K --checkpoint CKPT --output FILE [--format MINDIR] [--batch-size 1]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from zoo_workloads import config
from zoo_workloads.cli.common import add_run_config_args, guarded, parser, quiet_native_logs

FORMATS = ("MINDIR", "AIR", "ONNX")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of zoo-export."""
    p = parser("zoo-export", "Export a zoo model checkpoint for inference.")
    p.add_argument("--model", required=True, help=f"one of: {', '.join(config.model_names())}")
    p.add_argument("--num-classes", required=True, type=int)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--output", required=True, help="file name without extension (MindSpore adds .mindir)")
    p.add_argument("--format", default="MINDIR", choices=FORMATS)
    p.add_argument("--batch-size", type=int, default=1)
    add_run_config_args(p)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    def run() -> int:
        params = config.resolve(args.model, args.config, args.overrides)
        quiet_native_logs()
        import mindspore as ms
        import numpy as np

        from zoo_workloads.models import create_model, model_kwargs, model_spec
        from zoo_workloads.training import checkpoints, runner

        runner.configure(args.device, "graph", 0)
        spec = model_spec(args.model)
        net = create_model(args.model, args.num_classes, image_size=int(params["image_size"]),
                           width=int(params["width"]), layers=params.get("layers"),
                           **model_kwargs(args.model, params))
        checkpoints.restore(net, args.checkpoint)
        net = runner.Logits(net, spec.outputs == "logits+embedding")
        net.set_train(False)
        size = int(params["image_size"])
        shape = (args.batch_size, 3, size, size)
        if spec.input_kind == "video":
            shape = (args.batch_size, 3, int(params.get("clip_length", 16)), size, size)
        ms.export(net, ms.Tensor(np.zeros(shape, np.float32)), file_name=args.output, file_format=args.format)
        print(f"exported {args.model} {shape} to {args.output}.{args.format.lower()}", flush=True)
        return 0

    return guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
