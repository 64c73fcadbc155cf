"""`zoo-models`: list the registered models and describe one (parameters at full size, input, and each
hyperparameter: meaning, default, allowed range)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from zoo_workloads import config


def describe(name: str, num_classes: int | None = None) -> dict[str, Any]:
    """Plain-data description of a model at its design size: spec, trainable parameters, default hyperparameters.

    num_classes defaults to the paper's dataset: 1000 (ImageNet), 400 (Kinetics) for resnet3d.
    """
    from zoo_workloads.models import count_params, create_model, model_kwargs, model_spec

    spec = model_spec(name)
    if num_classes is None:
        num_classes = 400 if spec.input_kind == "video" else 1000
    hparams = config.default_hyperparameters(name)
    model = create_model(name, num_classes, **model_kwargs(name, hparams))
    return {
        "name": spec.name,
        "description": spec.description,
        "paper": spec.paper,
        "input_kind": spec.input_kind,
        "input_shape": list(spec.input_shape),
        "outputs": spec.outputs,
        "num_classes": num_classes,
        "trainable_parameters": count_params(model),
        "hyperparameters": hparams,
        "hyperparameter_help": hyperparameter_help(name),
    }


def hyperparameter_help(name: str) -> dict[str, dict[str, Any]]:
    """Per hyperparameter of the model: its meaning, default and allowed values (zoo_workloads.config.PARAMS)."""
    out: dict[str, dict[str, Any]] = {}
    for key, default in config.default_hyperparameters(name).items():
        param = config.PARAMS[key]
        out[key] = {"meaning": param.meaning, "default": default, "range": param.range_text()}
    return out


def _format(info: dict[str, Any]) -> str:
    params = info["trainable_parameters"]
    lines = [
        f"{info['name']}: {info['description']} ({info['paper']})",
        f"  input:       {info['input_kind']} {tuple(info['input_shape'])}",
        f"  outputs:     {info['outputs']}",
        f"  parameters:  {params:,} ({params / 1e6:.2f}M, {info['num_classes']} classes)",
        "  hyperparameters:",
    ]
    helps = info["hyperparameter_help"]
    width = max(len(f"{k}: {v}") for k, v in info["hyperparameters"].items())
    for key, value in info["hyperparameters"].items():
        text = f"{key}: {value}"
        lines.append(f"    {text:<{width}}  # {helps[key]['meaning']} ({helps[key]['range']})")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo-models", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the registered model names")
    info = sub.add_parser("info", help="describe one model")
    info.add_argument("name")
    info.add_argument("--num-classes", type=int, default=None, help="classifier size (default: the paper's)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `zoo-models`; returns the exit code (64 for a bad model name or argument)."""
    args = _parser().parse_args(argv)
    from zoo_workloads.models import list_models

    if args.command == "list":
        print("\n".join(list_models()))
        return 0
    if args.name not in list_models():
        print(
            f"zoo-models: unknown model {args.name!r}; known models: {', '.join(list_models())}",
            file=sys.stderr,
        )
        return 64
    if args.num_classes is not None and args.num_classes < 1:
        print(
            f"zoo-models: --num-classes must be a positive integer, got {args.num_classes}", file=sys.stderr
        )
        return 64
    info = describe(args.name, args.num_classes)
    print(json.dumps(info) if args.json else _format(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
