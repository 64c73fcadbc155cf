"""Optimizers of the zoo: Momentum (optionally Nesterov) with the zoo's weight-decay grouping, or THOR.

Weight decay applies to every parameter except those whose name contains beta, gamma or bias (BatchNorm shifts
and scales, Dense/conv biases), as every seed does. Fine-tuning (`finetune_last_stage`) trains only layer4 and
the classifier.
"""

from __future__ import annotations

import math
from typing import Any

import mindspore as ms
from mindspore import nn

from zoo_workloads import contract
from zoo_workloads.errors import ConfigError
from zoo_workloads.models import freeze_except

NO_DECAY_MARKERS = ("beta", "gamma", "bias")


def wants_decay(name: str) -> bool:
    """Whether weight decay applies to a parameter of this name."""
    return not any(marker in name for marker in NO_DECAY_MARKERS)


def split_decay(names: list[str]) -> tuple[list[str], list[str]]:
    """(names with weight decay, names without), each in the given order."""
    return [n for n in names if wants_decay(n)], [n for n in names if not wants_decay(n)]


def thor_damping(damping_init: float, decay_rate: float, epochs: int, steps_per_epoch: int) -> list[float]:
    """THOR's per-step damping, as the multigrain seed: init * decay ** (epoch / 10), epoch = (step+1)/spe."""
    return [
        damping_init * decay_rate ** (((i + 1) / steps_per_epoch) / 10)
        for i in range(epochs * steps_per_epoch)
    ]


def build_optimizer(
    net: nn.Cell, params: dict[str, Any], lrs: list[float], loss_scale: float, device: str
) -> nn.Optimizer:
    """The run's optimizer over the trainable parameters of net, with a per-step learning-rate tensor."""
    if params.get("finetune_last_stage", False):
        trainable = list(freeze_except(net))  # layer4 + fc only (resnet3d fine-tuning)
    else:
        trainable = list(net.trainable_params())
    lr = ms.Tensor(lrs, ms.float32)
    kind = params["optimizer"]
    if kind == contract.THOR:
        problem = contract.optimizer_problem(kind, device)
        if problem:
            raise ConfigError(f"optimizer {problem}")
        steps = len(lrs) // int(params["epochs"])
        damping = ms.Tensor(
            thor_damping(
                float(params.get("thor_damping_init", 0.03)),
                float(params.get("thor_damping_decay", 0.87)),
                int(params["epochs"]),
                steps,
            ),
            ms.float32,
        )
        return nn.thor(
            net,
            lr,
            damping,
            float(params["momentum"]),
            float(params["weight_decay"]),
            loss_scale,
            int(params["batch_size"]),
            frequency=int(params.get("thor_frequency", 100)),
        )
    decay = [p for p in trainable if wants_decay(p.name)]
    no_decay = [p for p in trainable if not wants_decay(p.name)]
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": float(params["weight_decay"])},
        {"params": no_decay, "weight_decay": 0.0},
        {"order_params": trainable},
    ]
    groups = [g for g in groups if "order_params" in g or g["params"]]
    if not math.isfinite(loss_scale) or loss_scale <= 0:
        raise ConfigError(f"hyperparameter loss_scale: must be a positive number, got {loss_scale!r}")
    return nn.Momentum(
        groups, lr, float(params["momentum"]), loss_scale=loss_scale, use_nesterov=kind == "nesterov"
    )
