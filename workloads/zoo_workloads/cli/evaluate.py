"""zoo-eval: evaluate a checkpoint on an eval set and print the zoo's result line (plus an `eval` event).

    zoo-eval --model M --data-dir EVAL_DIR --num-classes K --checkpoint CKPT [--device CPU] [--set k=v ...]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from zoo_workloads import config
from zoo_workloads.cli.common import add_run_config_args, guarded, parser, quiet_native_logs
from zoo_workloads.events import success_message, write_termination


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of zoo-eval."""
    p = parser("zoo-eval", "Evaluate a checkpoint of a zoo model.")
    p.add_argument("--model", required=True, help=f"one of: {', '.join(config.model_names())}")
    p.add_argument("--data-dir", required=True, help="evaluation data (ImageFolder root, or frames + split json)")
    p.add_argument("--num-classes", required=True, type=int)
    p.add_argument("--checkpoint", required=True)
    add_run_config_args(p)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    def run() -> int:
        params = config.resolve(args.model, args.config, args.overrides)
        quiet_native_logs()
        from zoo_workloads.data import layouts, pipeline
        from zoo_workloads.events import EventLog, format_result_line
        from zoo_workloads.models import create_model, model_kwargs, model_spec
        from zoo_workloads.training import checkpoints, runner

        runner.configure(args.device, str(params["mode"]), 0)
        spec = model_spec(args.model)
        data = pipeline.build(args.data_dir, params, spec.input_kind, training=False)
        if spec.input_kind == "image" and len(layouts.list_classes(args.data_dir)) > args.num_classes:
            from zoo_workloads.errors import ConfigError

            raise ConfigError(f"--num-classes {args.num_classes}: the eval set has more classes")
        net = create_model(args.model, args.num_classes, image_size=int(params["image_size"]),
                           width=int(params["width"]), layers=params.get("layers"),
                           **model_kwargs(args.model, params))
        epoch, _ = checkpoints.restore(net, args.checkpoint)
        result = runner.evaluate(runner.Logits(net, spec.outputs == "logits+embedding"), data, spec.input_kind)
        log = EventLog(0)
        log.human(format_result_line(result))
        log.emit("eval", epoch=epoch, metrics=result)
        write_termination(success_message(result, args.checkpoint, epoch))
        return 0

    return guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
