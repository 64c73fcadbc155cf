"""Log lines for people and machines, and the termination message (docs/contracts.md).

Every rank prints the zoo's human lines (`epoch: 1 step: 1251, loss is 5.721338`) and one JSON object per line
with `event`, `ts` and `rank`. Lines are flushed one by one because the operator follows logs live.
Pure Python: the launcher uses the termination message without MindSpore.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, TextIO

from zoo_workloads import contract
from zoo_workloads.errors import Failure

DEFAULT_TERMINATION_LOG = contract.TERMINATION_LOG
TERMINATION_LIMIT = contract.TERMINATION_LIMIT
EVENTS = contract.EVENTS


def _clean(value: Any) -> Any:
    """JSON-safe value: NaN/inf become null (json.dumps would write invalid JSON), numpy scalars become floats."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def format_event(event: str, rank: int, fields: dict[str, Any], ts: float | None = None) -> str:
    """One machine line: a JSON object with event, ts, rank and the event's fields."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; allowed: {', '.join(EVENTS)}")
    record: dict[str, Any] = {"event": event, "ts": round(time.time() if ts is None else ts, 3), "rank": rank}
    record.update(_clean(fields))
    return json.dumps(record, separators=(", ", ": "))


def format_step_line(epoch: int, step: int, loss: float) -> str:
    """The zoo's training line: `epoch: 1 step: 1251, loss is 5.721338`."""
    return f"epoch: {epoch} step: {step}, loss is {loss:.6f}"


def format_result_line(metrics: dict[str, float]) -> str:
    """The zoo's eval line: `result: {'top_1_accuracy': 0.7847, 'top_5_accuracy': 0.9412}`."""
    return f"result: { ({k: round(float(v), 6) for k, v in metrics.items()}) }"


class EventLog:
    """Writes human and JSON lines to one stream, flushing each line."""

    def __init__(self, rank: int, stream: TextIO | None = None) -> None:
        self.rank = rank
        self.stream = stream if stream is not None else sys.stdout
        self._bar_drawn = False

    def human(self, line: str) -> None:
        """Print a line for people (first erasing a progress bar drawn on a terminal)."""
        if self._bar_drawn:
            self.stream.write("\r\033[K")
            self._bar_drawn = False
        self.stream.write(line + "\n")
        self.stream.flush()

    def emit(self, event: str, **fields: Any) -> None:
        """Print one JSON event line."""
        self.human(format_event(event, self.rank, fields))

    def progress(self, done: int, total: int, loss: float) -> None:
        """A one-line progress bar, only on a terminal (logs followed by the operator never see it)."""
        if not self.stream.isatty() or total <= 0:
            return
        width = 30
        filled = int(width * done / total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} loss {loss:.4f}")
        self.stream.flush()
        self._bar_drawn = True


def success_message(
    metrics: dict[str, Any], checkpoint: str | None, epochs: int, **extra: Any
) -> dict[str, Any]:
    """The termination message of a successful run. `metrics` are those of `checkpoint`; extra fields: `best` and
    `last` ({epoch, checkpoint, metrics}) of a training run, `artifact` of an export."""
    message = {"status": "succeeded", "metrics": _clean(metrics), "checkpoint": checkpoint, "epochs": epochs}
    message.update({k: _clean(v) for k, v in extra.items() if v is not None})
    return message


def failure_message(failure: Failure) -> dict[str, Any]:
    """The termination message of a failed run."""
    return {
        "status": "failed",
        "reason": failure.reason,
        "message": failure.message,
        "retryable": failure.retryable,
    }


def encode_termination(message: dict[str, Any]) -> str:
    """Serialise a termination message, shortening `message`/metrics so it stays under 4 KiB."""
    text = json.dumps(message)
    if len(text.encode()) < TERMINATION_LIMIT:
        return text
    trimmed = dict(message)
    if "message" in trimmed:
        trimmed["message"] = str(trimmed["message"])[:1000]
    if "metrics" in trimmed and len(json.dumps(trimmed).encode()) >= TERMINATION_LIMIT:
        keep = ("top_1_accuracy", "top_5_accuracy", "loss")
        trimmed["metrics"] = {k: v for k, v in trimmed["metrics"].items() if k in keep}
        for kind in ("best", "last"):
            if isinstance(trimmed.get(kind), dict):
                record = dict(trimmed[kind])
                record["metrics"] = {k: v for k, v in (record.get("metrics") or {}).items() if k in keep}
                trimmed[kind] = record
    return json.dumps(trimmed)[: TERMINATION_LIMIT - 1]


def termination_path() -> str:
    """The termination-message file: $ZOO_TERMINATION_LOG, else the Kubernetes default."""
    return os.environ.get(contract.ENV_TERMINATION_LOG) or DEFAULT_TERMINATION_LOG


def write_termination(message: dict[str, Any], path: str | None = None) -> bool:
    """Write the termination message; warn on stderr and go on if the file cannot be written."""
    target = path or termination_path()
    try:
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(encode_termination(message))
        return True
    except OSError as err:
        print(f"warning: cannot write termination message to {target}: {err}", file=sys.stderr, flush=True)
        return False
