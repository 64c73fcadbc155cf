"""Data sink on Ascend: how many steps one sink runs.

The ModelZoo scripts behind the seeds' step times train with `dataset_sink_mode=True`: the data goes to the
device through a queue and the host sees one callback per sink instead of one per step. MindSpore's Model.train
then counts a sink as an "epoch" of `sink_size` steps (sink_size > 0). We keep the real epoch intact by sinking
a divisor of the steps per epoch, so every epoch ends on a sink boundary (evaluation, checkpoints and the
graceful stop happen there), and pick the size so that a sink lasts about TARGET_SECONDS: status then still
moves every few seconds. On CPU MindSpore ignores sink mode (every step calls back), so only Ascend sinks.
"""

from __future__ import annotations

from zoo_workloads.errors import ConfigError

TARGET_SECONDS = 5.0


def divisors(n: int) -> list[int]:
    """The divisors of n >= 1, ascending (O(sqrt n))."""
    small, large = [], []
    i = 1
    while i * i <= n:
        if n % i == 0:
            small.append(i)
            if i != n // i:
                large.append(n // i)
        i += 1
    return small + large[::-1]


def sink_size(
    steps_per_epoch: int, step_ms: float, requested: int = 0, target: float = TARGET_SECONDS
) -> int:
    """Steps per sink: `requested` (hyperparameter sink_size) when > 0, which must divide the steps per epoch;
    else the largest divisor of the steps per epoch that runs in at most `target` seconds at `step_ms` per step
    (at least 1)."""
    if steps_per_epoch < 1:
        raise ConfigError(f"steps per epoch must be >= 1 for a data sink, got {steps_per_epoch}")
    if requested > 0:
        if steps_per_epoch % requested:
            raise ConfigError(
                f"sink_size: {requested} does not divide the {steps_per_epoch} steps per epoch "
                f"(allowed: 0 = automatic, or one of {_some(divisors(steps_per_epoch))})"
            )
        return requested
    most = max(1, int(target * 1000.0 / step_ms)) if step_ms > 0 else 1
    return max(d for d in divisors(steps_per_epoch) if d <= most)


def _some(values: list[int], limit: int = 12) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def train_epochs(epochs: int, start: int, steps_per_epoch: int, size: int) -> tuple[int, int]:
    """Model.train's (epoch, initial_epoch) in sinks for real epochs start+1..epochs."""
    per_epoch = steps_per_epoch // size
    return epochs * per_epoch, start * per_epoch
