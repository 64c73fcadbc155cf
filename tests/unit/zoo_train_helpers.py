"""Helpers for tests that run the real zoo-* entry points in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


@dataclass
class Result:
    """A finished entry-point run: exit code, output, parsed JSON events and the termination message."""

    code: int
    stdout: str
    stderr: str
    events: list[dict]
    termination: dict | None


def run_entry(
    name: str, args: list[str], tmp: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> Result:
    """Run .venv/bin/<name> with args; the termination message goes to <tmp>/termination-log."""
    term = tmp / "termination-log"
    full_env = {**os.environ, "ZOO_TERMINATION_LOG": str(term), **(env or {})}
    proc = subprocess.run(
        [str(BIN / name), *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    message = json.loads(term.read_text()) if term.exists() else None
    return Result(proc.returncode, proc.stdout, proc.stderr, events, message)


def tiny(*pairs: str) -> list[str]:
    """--set arguments for a reduced model: width 8, one block per stage, 32 px, few steps."""
    base = [
        "width=8",
        "layers=[1, 1, 1, 1]",
        "image_size=32",
        "epochs=1",
        "steps_per_epoch=2",
        "batch_size=4",
        "mode=pynative",
    ]
    out: list[str] = []
    for item in [*base, *pairs]:
        out += ["--set", item]
    return out


def assert_event_shapes(events: list[dict]) -> None:
    """Every JSON line carries event, ts and rank, and a run has start, step, epoch and done in that order."""
    assert events, "no JSON event lines"
    for event in events:
        assert {"event", "ts", "rank"} <= event.keys()
        assert isinstance(event["ts"], float) and isinstance(event["rank"], int)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.index("step") < kinds.index("epoch")
    start = events[0]
    assert {"model", "rank_size", "epochs", "steps_per_epoch", "batch_size", "device"} <= start.keys()
    step = next(e for e in events if e["event"] == "step")
    assert {"epoch", "step", "steps_per_epoch", "loss", "images_per_second"} <= step.keys()
    epoch = next(e for e in events if e["event"] == "epoch")
    assert {"epoch", "epochs", "loss", "epoch_seconds", "images_per_second"} <= epoch.keys()
