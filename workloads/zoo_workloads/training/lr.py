"""Per-step learning-rate schedules of the zoo (MODELS.md, "Learning-rate modes").

With step i (0-based), total T and warmup w steps: warmup rises linearly from lr_init to lr_max over w steps
(the zoo's `lr_init + (lr_max - lr_init) * (i + 1) / w`), then
- linear: lr_max - (lr_max - lr_end) * (i - w) / (T - w)
- poly:   lr_max * (1 - (i - w) / (T - w)) ** power  (power 2 in the seeds)
- cosine: lr_end + (lr_max - lr_end) * (1 + cos(pi * (i - w) / (T - w))) / 2, or per epoch over
          `cosine_epochs` as BAM does: base * (1 + cos(pi * epoch / cosine_epochs)) / 2
- steps:  lr_max, x0.1 from 30 %, x0.01 from 60 %, x0.001 from 80 % of T.
Pure Python, so every mode is unit-tested without MindSpore.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """A schedule's parameters (the hyperparameters of the same names)."""

    mode: str
    lr_init: float
    lr_max: float
    lr_end: float
    warmup_epochs: int
    epochs: int
    steps_per_epoch: int
    lr_power: float = 2.0
    cosine_epochs: int = 0


def _after_warmup(s: Schedule, i: int, warmup: int, total: int) -> float:
    span = max(total - warmup, 1)
    frac = min(max((i - warmup) / span, 0.0), 1.0)
    if s.mode == "linear":
        return s.lr_max - (s.lr_max - s.lr_end) * frac
    if s.mode == "poly":
        return s.lr_max * (1.0 - frac) ** s.lr_power
    if s.mode == "cosine":
        if s.cosine_epochs > 0:
            epoch = min(i // s.steps_per_epoch, s.cosine_epochs)
            return s.lr_end + (s.lr_max - s.lr_end) * (1 + math.cos(math.pi * epoch / s.cosine_epochs)) / 2
        return s.lr_end + (s.lr_max - s.lr_end) * (1 + math.cos(math.pi * frac)) / 2
    if s.mode == "steps":
        position = i / total
        factor = 1.0 if position < 0.3 else 0.1 if position < 0.6 else 0.01 if position < 0.8 else 0.001
        return s.lr_max * factor
    raise ValueError(f"lr_mode: {s.mode!r} is not one of linear, poly, cosine, steps")


def learning_rates(s: Schedule) -> list[float]:
    """The learning rate of every step of the run (epochs * steps_per_epoch values)."""
    if s.steps_per_epoch < 1 or s.epochs < 1:
        raise ValueError("epochs and steps_per_epoch must be >= 1")
    total = s.epochs * s.steps_per_epoch
    warmup = min(s.warmup_epochs * s.steps_per_epoch, total)
    rates = []
    for i in range(total):
        if i < warmup:
            rates.append(s.lr_init + (s.lr_max - s.lr_init) * (i + 1) / warmup)
        else:
            rates.append(_after_warmup(s, i, warmup, total))
    return rates
