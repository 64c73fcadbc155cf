"""What a run leaves behind: its best and last checkpoint, each with its epoch and the metrics of THAT epoch.

Pure Python (no MindSpore): the runner tells the ledger what it evaluated and what it saved; the ledger pairs
every checkpoint with the metrics of the epoch it was saved at, never with those of a later epoch. The ledger is
also written next to the checkpoints as `result.json`, so a resumed run (and `zoo-eval --run DIR`) knows which
epoch `-best.ckpt` holds and what it scored.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_workloads import contract

RESULT_FILE = contract.RESULT_FILE
CONFIG_FILE = contract.CONFIG_FILE
PRIMARY_METRIC = "top_1_accuracy"
KINDS = ("best", "last")


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(float(value)):
            out[str(key)] = float(value)
    return out


@dataclass
class Ledger:
    """Per-epoch metrics, and which checkpoint holds which epoch."""

    epochs: dict[int, dict[str, float]] = field(default_factory=dict)
    saved: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> {epoch, checkpoint, metrics}

    def trained(self, epoch: int, loss: float) -> None:
        """The training loss of an epoch (kept with the epoch's metrics)."""
        self.epochs.setdefault(epoch, {}).update(_finite({"loss": loss}))

    def evaluated(self, epoch: int, metrics: dict[str, Any]) -> bool:
        """Record an evaluation; True when it beats the best checkpoint's primary metric (a new best)."""
        self.epochs.setdefault(epoch, {}).update(_finite(metrics))
        score = _finite(metrics).get(PRIMARY_METRIC)
        if score is None:
            return False
        best = self.saved.get("best", {}).get("metrics", {}).get(PRIMARY_METRIC)
        return best is None or score > best

    def checkpointed(self, kind: str, epoch: int, path: str) -> dict[str, Any]:
        """Record that `path` holds the weights after `epoch`; returns the record (metrics of that epoch)."""
        if kind not in KINDS:
            raise ValueError(f"checkpoint kind {kind!r}; allowed: {', '.join(KINDS)}")
        record = {"epoch": epoch, "checkpoint": path, "metrics": dict(self.epochs.get(epoch, {}))}
        self.saved[kind] = record
        return record

    def best_score(self) -> float:
        """Primary metric of the best checkpoint, -1 when there is none."""
        return float(self.saved.get("best", {}).get("metrics", {}).get(PRIMARY_METRIC, -1.0))

    def summary(self) -> dict[str, Any]:
        """{best, last} (absent kinds omitted) plus `checkpoint` and `metrics` of the one to use: the best when
        there is one, else the last. `checkpoint` is None when nothing was saved."""
        out: dict[str, Any] = {kind: dict(self.saved[kind]) for kind in KINDS if kind in self.saved}
        named = self.saved.get("best") or self.saved.get("last")
        out["checkpoint"] = named["checkpoint"] if named else None
        out["metrics"] = dict(named["metrics"]) if named else {}
        return out

    def to_json(self) -> str:
        """The ledger as JSON (epochs keyed by string, as JSON wants)."""
        return json.dumps(
            {"epochs": {str(k): v for k, v in sorted(self.epochs.items())}, "saved": self.saved},
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Ledger:
        """A ledger read back; an unreadable or foreign text gives an empty one."""
        try:
            data = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        epochs: dict[int, dict[str, float]] = {}
        for key, value in (data.get("epochs") or {}).items():
            if str(key).isdigit() and isinstance(value, dict):
                epochs[int(key)] = _finite(value)
        saved = {
            k: v
            for k, v in (data.get("saved") or {}).items()
            if k in KINDS
            and isinstance(v, dict)
            and isinstance(v.get("epoch"), int)
            and isinstance(v.get("checkpoint"), str)
        }
        for record in saved.values():
            record["metrics"] = _finite(record.get("metrics") or {})
        return cls(epochs, saved)

    def forget_after(self, epoch: int) -> None:
        """Drop what a resumed run will redo: epochs after `epoch` (and a `last` saved after it)."""
        self.epochs = {k: v for k, v in self.epochs.items() if k <= epoch}
        if self.saved.get("last", {}).get("epoch", 0) > epoch:
            self.saved.pop("last")


def write(ledger: Ledger, directory: str | Path) -> Path:
    """Write <directory>/result.json atomically (a reader never sees half a file)."""
    target = Path(directory) / RESULT_FILE
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(ledger.to_json(), encoding="utf-8")
    os.replace(tmp, target)
    return target


def read(directory: str | Path) -> Ledger:
    """The ledger of a run directory (empty when it has none)."""
    path = Path(directory) / RESULT_FILE
    try:
        return Ledger.from_json(path.read_text(encoding="utf-8"))
    except OSError:
        return Ledger()
