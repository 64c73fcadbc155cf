"""`--run DIR`: what zoo-eval and zoo-export recover from a training run's directory, without MindSpore.

A run directory (zoo-train's --output-dir) holds config.yaml (model, hyperparameters, and `run`: num_classes and
the data dirs), result.json (best and last checkpoint, each with its epoch and metrics) and the checkpoints.
Explicit flags win over what the directory says; `--checkpoint best|last` picks a checkpoint by kind.
Checkpoints are looked up by file name inside DIR, so a run directory can be moved or mounted elsewhere.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_workloads import config
from zoo_workloads.errors import ConfigError
from zoo_workloads.training import results

CHECKPOINT_KINDS = ("best", "last")


@dataclass(frozen=True)
class RunInputs:
    """Everything an evaluation or export needs, resolved."""

    model: str
    num_classes: int
    params: dict[str, Any]
    checkpoint: str
    data_dir: str | None = None
    recorded: dict[str, Any] = field(default_factory=dict)  # what result.json says about this checkpoint


def add_args(p: argparse.ArgumentParser) -> None:
    """--run, --model, --num-classes and --checkpoint (the last three optional with --run)."""
    p.add_argument(
        "--run",
        default=None,
        metavar="DIR",
        help="a training run's output directory: model, settings and checkpoints are read from it",
    )
    p.add_argument(
        "--model", default=None, help=f"one of: {', '.join(config.model_names())} (default: the run's)"
    )
    p.add_argument("--num-classes", type=int, default=None, help="default: the run's")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="a checkpoint file, or best|last of the run (default: best, else last)",
    )


def _pick_checkpoint(run: Path, model: str, choice: str | None, ledger: results.Ledger) -> tuple[str, dict]:
    kinds = [choice] if choice in CHECKPOINT_KINDS else list(CHECKPOINT_KINDS)
    for kind in kinds:
        record = ledger.saved.get(kind)
        if record:
            path = run / Path(record["checkpoint"]).name
            if path.is_file():
                return str(path), record
    # No result.json (an older run): the file names say which is which.
    best = run / f"{model}-best.ckpt"
    epochs = sorted(
        (int(p.stem.rsplit("-", 1)[1]), p)
        for p in run.glob(f"{model}-*.ckpt")
        if p.stem.rsplit("-", 1)[1].isdigit()
    )
    if "best" in kinds and best.is_file():
        return str(best), {}
    if "last" in kinds and epochs:
        return str(epochs[-1][1]), {}
    raise ConfigError(f"--run {run}: no {choice or 'best or last'} checkpoint of {model} in it")


def resolve(args: argparse.Namespace, *, data_flag: str | None = None) -> RunInputs:
    """The inputs of an eval/export from --run (if given) and the explicit flags; ConfigError when one is missing.

    Hyperparameters: model defaults < the run's config.yaml < --config < --set."""
    data_dir = getattr(args, data_flag, None) if data_flag else None
    if args.run is None:
        missing = [
            flag
            for flag, value in (
                ("--model", args.model),
                ("--num-classes", args.num_classes),
                ("--checkpoint", args.checkpoint),
            )
            if value is None
        ]
        if data_flag and data_dir is None:
            missing.append("--" + data_flag.replace("_", "-"))
        if missing or args.checkpoint in CHECKPOINT_KINDS:
            raise ConfigError(f"{', '.join(missing) or '--checkpoint best|last'}: required without --run DIR")
        params = config.resolve(args.model, args.config, args.overrides)
        return RunInputs(args.model, args.num_classes, params, args.checkpoint, data_dir)
    run = Path(args.run)
    saved = run / results.CONFIG_FILE
    if not saved.is_file():
        raise ConfigError(f"--run {run}: no {results.CONFIG_FILE} in it (is it a zoo-train --output-dir?)")
    model, _, record = config.load_run(saved)
    if args.model is not None and args.model != model:
        raise ConfigError(f"--model {args.model}: the run in {run} trained {model}")
    files: list[str | Path] = [saved] + ([args.config] if args.config else [])
    params = config.resolve(model, files, args.overrides)
    num_classes = args.num_classes if args.num_classes is not None else record.get("num_classes")
    if not isinstance(num_classes, int):
        raise ConfigError(f"--num-classes: required; {saved} does not record it")
    if data_flag and data_dir is None:
        data_dir = record.get("eval_dir") or record.get("data_dir")
        if not data_dir:
            raise ConfigError(f"--{data_flag.replace('_', '-')}: required; {saved} records no data directory")
    ledger = results.read(run)
    if args.checkpoint is not None and args.checkpoint not in CHECKPOINT_KINDS:
        return RunInputs(model, num_classes, params, args.checkpoint, data_dir)
    checkpoint, recorded = _pick_checkpoint(run, model, args.checkpoint, ledger)
    return RunInputs(model, num_classes, params, checkpoint, data_dir, recorded)
