"""Parsing of what ranks print and leave behind: JSON log lines and the termination message.

Machine lines are JSON objects with "event", "ts" and "rank" (contracts.md); every other line is for people and
ignored here. Progress folds events into a small dict; the result comes from a `done` event or the termination
message.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from zoo_workloads import contract

EVENTS = frozenset(contract.EVENTS)
MAX_LINE_CHARS = 240
# MindSpore's own log banners, e.g. `[WARNING] ME(8:140...,MainProcess):2026-12-02-03:14:40.123.456 [file] text`
# (module tags ME, MD, DEVICE, GE, CORE, ...). DEBUG/INFO/WARNING ones are noise in status; ERROR ones are kept.
_MS_BANNER = re.compile(r"^\[(DEBUG|INFO|WARNING)\] [A-Z_]+\(\d+")


def parse_line(line: str) -> dict[str, Any] | None:
    """The event of one machine line, or None for a human line or anything malformed."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("event") not in EVENTS:
        return None
    if not isinstance(data.get("rank"), int) or isinstance(data.get("rank"), bool):
        return None
    return data


def parse_lines(text: str) -> list[dict[str, Any]]:
    """Every event in a block of log text, in order."""
    return [ev for ev in map(parse_line, text.splitlines()) if ev is not None]


def lead_rank(events: Iterable[dict[str, Any]], previous: int | None = None) -> int | None:
    """The lowest rank among `events` and `previous`: the rank a pod's log stands for. One rank per pod in device
    mode; a server pod (issue 21) prints all of its processes' events, and its lowest rank speaks for it."""
    ranks = [ev["rank"] for ev in events if isinstance(ev.get("rank"), int)]
    if previous is not None:
        ranks.append(previous)
    return min(ranks, default=None)


def split_ranks(text: str) -> dict[int | None, list[str]]:
    """A server pod's log split per rank (issue 21): event lines by their `rank` field, human lines by the
    launcher's prefix (contract.RANK_LINE_PREFIX, removed); lines of neither kind (the launcher's own) under None.
    In order within each rank."""
    out: dict[int | None, list[str]] = {}
    for line in text.splitlines():
        event = parse_line(line)
        if event is not None:
            rank, kept = event["rank"], line
        else:
            rank, kept = contract.line_rank(line)
        out.setdefault(rank, []).append(kept)
    return out


def is_human_line(line: str) -> bool:
    """Whether a line is meant for people: not empty, not a JSON event line, not a MindSpore INFO/WARNING banner."""
    text = line.strip()
    return bool(text) and parse_line(text) is None and not _MS_BANNER.match(text)


def last_lines(text: str, count: int) -> list[str]:
    """The last `count` human lines (`is_human_line`), each cut to MAX_LINE_CHARS (status must stay small)."""
    if count <= 0:
        return []
    lines = [ln.rstrip() for ln in text.splitlines() if is_human_line(ln)]
    return [ln if len(ln) <= MAX_LINE_CHARS else ln[: MAX_LINE_CHARS - 3] + "..." for ln in lines[-count:]]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _short(value: Any, digits: int = 5) -> float | None:
    """A finite number cut to `digits` significant digits: `kubectl get ztj` prints status numbers verbatim."""
    number = _number(value)
    return None if number is None else float(f"{number:.{digits}g}")


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def fold_progress(progress: dict[str, Any], events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Progress after `events`, starting from `progress` (keys: epoch, epochs, step, stepsPerEpoch, loss,
    imagesPerSecond, globalBatchSize). Missing or malformed fields keep their previous value."""
    out = dict(progress)

    def put(key: str, value: Any) -> None:
        if value is not None:
            out[key] = value

    for ev in events:
        kind = ev["event"]
        if kind == "start":
            put("epochs", _count(ev.get("epochs")))
            put("stepsPerEpoch", _count(ev.get("steps_per_epoch")))
            batch, ranks = _count(ev.get("batch_size")), _count(ev.get("rank_size")) or 1
            put(
                "globalBatchSize", batch * ranks if batch else None
            )  # images per step, all ranks (for the ETA)
        elif kind == "step":
            put("epoch", _count(ev.get("epoch")))
            put("step", _count(ev.get("step")))
            put("stepsPerEpoch", _count(ev.get("steps_per_epoch")))
            put("loss", _short(ev.get("loss")))
            put("imagesPerSecond", _number(ev.get("images_per_second")))
        elif kind == "epoch":
            put("epoch", _count(ev.get("epoch")))
            put("epochs", _count(ev.get("epochs")))
            put("loss", _short(ev.get("loss")))
            put("imagesPerSecond", _number(ev.get("images_per_second")))
        elif kind == "done":
            put("epochs", _count(ev.get("epochs")))
            put("epoch", _count(ev.get("epochs")))
    return out


def result_from_metrics(metrics: Any, checkpoint: Any) -> dict[str, Any]:
    """status.result from a metrics mapping: top1/top5 pulled out, every finite number kept in `metrics`."""
    clean = (
        {str(k): float(v) for k, v in (metrics or {}).items() if _number(v) is not None}
        if isinstance(metrics, dict)
        else {}
    )
    result: dict[str, Any] = {"metrics": clean}
    for key, name in (("top1", "top_1_accuracy"), ("top5", "top_5_accuracy")):
        if name in clean:
            result[key] = _short(clean[name], 4)  # the TOP-1 column; `metrics` keeps every digit
    if isinstance(checkpoint, str) and checkpoint:
        result["checkpoint"] = checkpoint
    return result


def record_from_events(events: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The last `done` event as it was printed (metrics, checkpoint, best, last, epochs), else the last `eval`'s
    metrics, else None: the raw record that zoo_operator.results turns into status.result."""
    done = evaluated = None
    for ev in events:
        if ev["event"] == "done":
            done = ev
        elif ev["event"] == "eval":
            evaluated = ev
    if done is not None:
        return dict(done)
    if evaluated is not None:
        return {"metrics": evaluated.get("metrics"), "epochs": evaluated.get("epoch")}
    return None


def parse_termination(text: str | None) -> dict[str, Any] | None:
    """The termination message as a dict with a "status" key, or None if absent or not the contract's JSON."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("status") not in ("succeeded", "failed"):
        return None
    return data


def fold_checkpoints(state: dict[str, Any], events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """What a rank said about checkpoints, folded: `last` (its newest checkpoint: epoch, step, path, ts), `resume`
    (where it resumed from: epoch, step, global_step, path, ts) and `invalid` (checkpoints it skipped as damaged:
    [path, reason] pairs). The `-best` copies are not resume points and do not count as `last`."""
    out = dict(state)
    invalid = list(out.get("invalid") or [])
    for ev in events:
        kind = ev["event"]
        epoch, step, path = _count(ev.get("epoch")), _count(ev.get("step")), ev.get("path")
        if kind == "checkpoint" and epoch is not None and isinstance(path, str) and not ev.get("best"):
            out["last"] = {
                "epoch": epoch,
                "step": step,
                "path": path,
                "ts": _number(ev.get("time") or ev.get("ts")),
            }
        elif kind == "resume" and epoch is not None and isinstance(path, str):
            out["resume"] = {
                "epoch": epoch,
                "step": step,
                "global_step": _count(ev.get("global_step")),
                "path": path,
                "ts": _number(ev.get("ts")),
            }
        elif kind == "process_restart" and _count(ev.get("restart")):
            # zoo-launch restarted this pod's training process in place (issue 23); the resume that follows
            # is an in-place one.
            out["process_restart"] = {"restart": _count(ev.get("restart")), "ts": _number(ev.get("ts"))}
        elif kind == "checkpoint_invalid" and isinstance(path, str):
            pair = [path, str(ev.get("reason") or "invalid")[:MAX_LINE_CHARS]]
            if pair not in invalid:
                invalid.append(pair)
    if invalid:
        out["invalid"] = invalid[-8:]
    return out
