"""zoo-train: train one model of the zoo (docs/contracts.md, "Container command").

zoo-train --model resnet50_bam --data-dir D [--eval-dir E] --num-classes K --output-dir O
          --device CPU [--config FILE.yaml] [--set key=value ...] [--resume CKPT]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from zoo_workloads import config, contract
from zoo_workloads.cli.common import add_run_config_args, guarded, parser, quiet_native_logs
from zoo_workloads.errors import ConfigError, DatasetMissing
from zoo_workloads.events import success_message, write_termination


def build_parser():
    """The zoo-train argument parser."""
    p = parser("zoo-train", "Train a MindSpore ModelZoo model.")
    p.add_argument("--model", required=True, help=f"one of: {', '.join(config.model_names())}")
    p.add_argument(
        "--data-dir", required=True, help="training data (ImageFolder root, or video frames + split json)"
    )
    p.add_argument(
        "--eval-dir", default=None, help="evaluation data (same layout); evaluated during training"
    )
    p.add_argument("--num-classes", required=True, type=int)
    p.add_argument("--output-dir", required=True, help="checkpoints and the resolved config.yaml go here")
    add_run_config_args(p)
    p.add_argument("--resume", default=None, help="checkpoint to resume from (weights, optimizer, epoch)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of zoo-train."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)

    def run() -> int:
        params = config.resolve(args.model, args.config, args.overrides)
        # Cheap checks first, before MindSpore loads: a pod with a permanent error should fail in a second.
        if args.num_classes < 1:
            raise ConfigError(f"--num-classes: must be >= 1, got {args.num_classes}")
        problem = contract.optimizer_problem(params["optimizer"], args.device)
        if problem:
            raise ConfigError(f"optimizer {problem} (--set optimizer=momentum)")
        scheduler = (
            os.environ.get(contract.ENV_MS_ROLE) == contract.MS_ROLE_SCHEDULER
        )  # serves the cluster only; may not mount the data
        for flag, path in (("--data-dir", args.data_dir), ("--eval-dir", args.eval_dir)):
            if not scheduler and path is not None and not Path(path).is_dir():
                raise DatasetMissing(f"{flag}: dataset directory {path} does not exist")
        quiet_native_logs()
        from zoo_workloads.training.runner import RunArgs, train

        result = train(
            RunArgs(
                args.model,
                args.data_dir,
                args.eval_dir,
                args.num_classes,
                args.output_dir,
                args.device,
                params,
                args.resume,
            )
        )
        write_termination(
            success_message(
                result["metrics"],
                result["checkpoint"],
                result["epochs"],
                best=result.get("best"),
                last=result.get("last"),
            )
        )
        return 0

    return guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
