"""Checkpoint files: names, retention of the last K, the best one, and resuming.

Files are <dir>/<model>-<epoch>.ckpt and <dir>/<model>-best.ckpt; each carries `epoch` and `best_top1` so a
resumed run continues where it stopped. The train network is saved whole (weights, optimizer moments, step).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import mindspore as ms
from mindspore import nn

from zoo_workloads.errors import ConfigError

_EPOCH_FILE = re.compile(r"^(?P<model>.+)-(?P<epoch>\d+)\.ckpt$")


def epoch_path(directory: Path, model: str, epoch: int) -> Path:
    """Path of the checkpoint of an epoch."""
    return directory / f"{model}-{epoch}.ckpt"


def best_path(directory: Path, model: str) -> Path:
    """Path of the best checkpoint (highest eval top-1)."""
    return directory / f"{model}-best.ckpt"


def stale_epochs(epochs: list[int], keep: int) -> list[int]:
    """Which epoch checkpoints to delete so that only the last `keep` remain (keep 0 = keep all)."""
    if keep <= 0:
        return []
    return sorted(epochs)[:-keep] if len(epochs) > keep else []


def saved_epochs(directory: Path, model: str) -> list[int]:
    """Epochs that have a checkpoint of this model in directory."""
    found = []
    for item in directory.glob(f"{model}-*.ckpt"):
        match = _EPOCH_FILE.match(item.name)
        if match and match["model"] == model:
            found.append(int(match["epoch"]))
    return sorted(found)


def save(cell: nn.Cell, path: Path, epoch: int, best_top1: float) -> None:
    """Save a cell's parameters with the epoch and best accuracy so far."""
    ms.save_checkpoint(cell, str(path), append_dict={"epoch": epoch, "best_top1": float(best_top1)})


def prune(directory: Path, model: str, keep: int) -> list[Path]:
    """Delete all but the last `keep` epoch checkpoints; returns the deleted paths."""
    removed = []
    for epoch in stale_epochs(saved_epochs(directory, model), keep):
        path = epoch_path(directory, model, epoch)
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint; ConfigError (a permanent failure) when it does not exist or is unreadable."""
    if not Path(path).is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        return ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError) as err:
        raise ConfigError(f"checkpoint {path}: cannot load: {' '.join(str(err).split())[:300]}") from err


def restore(cell: nn.Cell, path: str | Path) -> tuple[int, float]:
    """Load a checkpoint into cell (extra entries are ignored); returns (epoch, best_top1) stored in it."""
    data = load(path)
    epoch = int(data.pop("epoch").asnumpy()) if "epoch" in data else 0
    best = float(data.pop("best_top1").asnumpy()) if "best_top1" in data else 0.0
    for schedule in ("learning_rate", "damping"):
        data.pop(schedule, None)  # recomputed from the config; global_step indexes into the new one
    missing, _ = ms.load_param_into_net(cell, data, strict_load=False)
    trained = [name for name in missing if "moments" not in name and "global_step" not in name]
    if len(trained) == len(list(cell.get_parameters())):
        raise ConfigError(f"checkpoint {path}: none of its parameters match this model")
    return epoch, best
