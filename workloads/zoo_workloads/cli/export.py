"""zoo-export: export a checkpoint to MINDIR (or AIR/ONNX where MindSpore supports it) for inference.

    zoo-export --run RUN_DIR [--checkpoint best|last|CKPT] [--output FILE] [--format MINDIR] [--batch-size 1]
    zoo-export --model M --num-classes K --checkpoint CKPT --output FILE [--format MINDIR] [--batch-size 1]

With --run, the model and its architecture settings come from the run's saved config.yaml; the output defaults
to <RUN_DIR>/<model>-<best|last|epoch>. A MINDIR is loaded back and run on one batch before the export counts as
done (AIR is compiled for Ascend and cannot be loaded back on other devices). MODELZOO writes <output>-modelzoo.ckpt with
the network's parameters under the MindSpore ModelZoo reference network's names (models/modelzoo.py), for the
reference's own eval.py; only for the models that have a reference table.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from zoo_workloads.cli import rundir
from zoo_workloads.cli.common import add_run_config_args, guarded, parser, quiet_native_logs
from zoo_workloads.errors import ConfigError
from zoo_workloads.events import success_message, write_termination

FORMATS = ("MINDIR", "AIR", "ONNX", "MODELZOO")


def input_shape(input_kind: str, params: dict, batch_size: int) -> tuple[int, ...]:
    """The network input of one batch: NCHW images, or NCDHW clips for video models."""
    size = int(params["image_size"])
    if input_kind == "video":
        return (batch_size, 3, int(params.get("clip_length", 16)), size, size)
    return (batch_size, 3, size, size)


def default_output(inputs: rundir.RunInputs, choice: str | None) -> str:
    """<run dir>/<model>-<best|last|checkpoint stem>: next to the checkpoint it came from."""
    ckpt = Path(inputs.checkpoint)
    tag = choice if choice in rundir.CHECKPOINT_KINDS else ckpt.stem.removeprefix(f"{inputs.model}-")
    return str(ckpt.parent / f"{inputs.model}-{tag}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of zoo-export."""
    p = parser("zoo-export", "Export a zoo model checkpoint for inference.")
    rundir.add_args(p)
    p.add_argument(
        "--output",
        default=None,
        help="file name without extension (MindSpore adds .mindir); default with --run: next to the "
        "checkpoint",
    )
    p.add_argument(
        "--format",
        default="MINDIR",
        help=f"one of {', '.join(FORMATS)}, or several separated by commas (MINDIR,AIR on Ascend); "
        "MODELZOO: a .ckpt under the ModelZoo reference network's parameter names",
    )
    p.add_argument("--batch-size", type=int, default=1)
    add_run_config_args(p)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    def run() -> int:
        inputs = rundir.resolve(args)
        if args.output is None and args.run is None:
            raise ConfigError("--output: required without --run DIR")
        output = args.output or default_output(inputs, args.checkpoint)
        formats = [f.strip().upper() for f in args.format.split(",") if f.strip()]
        if not formats or any(f not in FORMATS for f in formats):
            raise ConfigError(f"--format {args.format}: each must be one of {', '.join(FORMATS)}")
        if "AIR" in formats and args.device != "Ascend":
            raise ConfigError("--format AIR: AIR export needs an Ascend device; use MINDIR elsewhere")
        params = inputs.params
        quiet_native_logs()
        import mindspore as ms
        import numpy as np

        from zoo_workloads.models import create_model, model_kwargs, model_spec, modelzoo
        from zoo_workloads.training import checkpoints, runner

        runner.configure(args.device, "graph", 0)
        spec = model_spec(inputs.model)
        net = create_model(
            inputs.model,
            inputs.num_classes,
            image_size=int(params["image_size"]),
            width=int(params["width"]),
            layers=params.get("layers"),
            **model_kwargs(inputs.model, params),
        )
        epoch, _ = checkpoints.restore(net, inputs.checkpoint, inputs.model)
        if "MODELZOO" in formats and not modelzoo.covered(inputs.model):
            raise ConfigError(
                f"--format MODELZOO: {inputs.model} has no ModelZoo reference table "
                f"(covered: {', '.join(sorted(modelzoo.RULES))})"
            )
        trunk = net
        net = runner.Logits(net, spec.outputs == "logits+embedding")
        net.set_train(False)
        shape = input_shape(spec.input_kind, params, args.batch_size)
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        artifacts = []
        for fmt in formats:
            if fmt == "MODELZOO":
                own = {p.name: p for p in trunk.get_parameters()}
                renamed = modelzoo.to_reference(inputs.model, own, own)
                # -modelzoo: never the name of the checkpoint it came from (<model>-best.ckpt)
                ms.save_checkpoint(
                    [{"name": k, "data": v} for k, v in renamed.items()], f"{output}-modelzoo.ckpt"
                )
                artifacts.append(f"{output}-modelzoo.ckpt")
                print(
                    f"wrote {inputs.model} under the ModelZoo reference's names to {artifacts[-1]}",
                    flush=True,
                )
                continue
            ms.export(net, ms.Tensor(np.zeros(shape, np.float32)), file_name=output, file_format=fmt)
            artifacts.append(f"{output}.{fmt.lower()}")
            print(f"exported {inputs.model} {shape} to {artifacts[-1]}", flush=True)
        artifact = artifacts[0]
        verified = None
        if formats[0] == "MINDIR":
            # Load it back and run one batch: an export that cannot serve is not done.
            graph = ms.nn.GraphCell(ms.load(artifact))
            logits = graph(ms.Tensor(np.zeros(shape, np.float32))).asnumpy()
            verified = list(logits.shape)
            print(f"loaded {artifact} back: one batch -> logits {tuple(logits.shape)}", flush=True)
        write_termination(
            success_message(
                {},
                inputs.checkpoint,
                epoch,
                artifact=artifact,
                artifacts=artifacts,
                input_shape=list(shape),
                output_shape=verified,
            )
        )
        return 0

    return guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
