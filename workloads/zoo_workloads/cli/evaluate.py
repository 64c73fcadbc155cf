"""zoo-eval: evaluate a checkpoint on an eval set and print the zoo's result line (plus an `eval` event).

    zoo-eval --run RUN_DIR [--checkpoint best|last|CKPT] [--data-dir EVAL_DIR] [--device CPU]
    zoo-eval --model M --data-dir EVAL_DIR --num-classes K --checkpoint CKPT [--device CPU] [--set k=v ...]

With --run, the model, its architecture settings, the number of classes and (unless --data-dir is given) the
evaluation set come from the run's saved config.yaml; the checkpoint defaults to the run's best.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from zoo_workloads.cli import rundir
from zoo_workloads.cli.common import add_run_config_args, guarded, parser, quiet_native_logs
from zoo_workloads.events import success_message, write_termination


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of zoo-eval."""
    p = parser("zoo-eval", "Evaluate a checkpoint of a zoo model.")
    rundir.add_args(p)
    p.add_argument(
        "--data-dir",
        default=None,
        help="evaluation data (ImageFolder root, or frames + split json); default: the run's eval set",
    )
    add_run_config_args(p)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    def run() -> int:
        inputs = rundir.resolve(args, data_flag="data_dir")
        params = inputs.params
        quiet_native_logs()
        from zoo_workloads.data import layouts, pipeline
        from zoo_workloads.errors import ConfigError, DatasetMissing
        from zoo_workloads.events import EventLog, format_result_line
        from zoo_workloads.models import create_model, model_kwargs, model_spec
        from zoo_workloads.training import checkpoints, runner

        assert inputs.data_dir is not None
        if not Path(inputs.data_dir).is_dir():
            raise DatasetMissing(f"--data-dir: dataset directory {inputs.data_dir} does not exist")
        runner.configure(args.device, str(params["mode"]), 0)
        spec = model_spec(inputs.model)
        data = pipeline.build(inputs.data_dir, params, spec.input_kind, training=False)
        if spec.input_kind == "image" and len(layouts.list_classes(inputs.data_dir)) > inputs.num_classes:
            raise ConfigError(f"--num-classes {inputs.num_classes}: the eval set has more classes")
        net = create_model(
            inputs.model,
            inputs.num_classes,
            image_size=int(params["image_size"]),
            width=int(params["width"]),
            layers=params.get("layers"),
            **model_kwargs(inputs.model, params),
        )
        epoch, _ = checkpoints.restore(net, inputs.checkpoint, inputs.model)
        log = EventLog(0)
        # Progress like training's: one pass over the eval set is "epoch 1 of 1", a batch a step.
        log.emit(
            "start",
            model=inputs.model,
            rank_size=1,
            epochs=1,
            steps_per_epoch=data.steps,
            batch_size=int(params["eval_batch_size"] or params["batch_size"]),
            device=args.device,
        )
        clock = [time.time()]

        def batch(index: int, rows: int) -> None:
            now = time.time()
            log.emit(
                "step",
                epoch=1,
                step=index,
                steps_per_epoch=data.steps,
                images_per_second=round(rows / max(now - clock[0], 1e-9), 2),
            )
            clock[0] = now

        result = runner.evaluate(
            runner.Logits(net, spec.outputs == "logits+embedding"), data, spec.input_kind, on_batch=batch
        )
        log.human(format_result_line(result))
        log.emit("eval", epoch=epoch, metrics=result, checkpoint=inputs.checkpoint)
        write_termination(success_message(result, inputs.checkpoint, epoch))
        return 0

    return guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
