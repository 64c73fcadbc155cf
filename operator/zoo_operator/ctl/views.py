"""Pure parts of `kubectl ztj`: merging rank logs by time, prefixes, per-rank progress, text charts, summaries.

Plain data in, plain data (or text) out; main.py does the kubectl calls and the terminal.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from zoo_operator import logparse, status
from zoo_operator.podview import parse_time
from zoo_workloads import contract

# ANSI colours of rank prefixes, cycled (like `docker compose logs` and `stern` colour each source).
COLOURS = (36, 33, 32, 35, 34, 31, 96, 93, 92, 95, 94, 91)


class LogLine(NamedTuple):
    """One line of one rank: `ts` is unix seconds from the kubelet's timestamp (None for a kept status line)."""

    ts: float | None
    rank: int
    text: str


def parse_timestamped(line: str) -> tuple[float | None, str]:
    """Split a `kubectl logs --timestamps` line (`2026-12-02T03:14:40.123456789Z text`) into (unix s, text)."""
    stamp, sep, text = line.partition(" ")
    if not sep:
        stamp, text = line, ""
    when = stamp.rstrip("Z")
    main, dot, frac = when.partition(".")
    try:
        base = (
            dt.datetime.fromisoformat(main).replace(tzinfo=dt.UTC)
            if "+" not in main
            else dt.datetime.fromisoformat(main)
        )
    except ValueError:
        return None, line
    digits = "".join(ch for ch in frac if ch.isdigit())
    return base.timestamp() + (float("0." + digits) if dot and digits else 0.0), text


def rank_lines(rank: int, text: str, server: bool = False) -> list[LogLine]:
    """The lines of a `kubectl logs --timestamps` output of one rank, or of one server pod (`server`, issue 21:
    each line goes to the rank it names, `rank` is kept for the launcher's own lines)."""
    out = []
    for raw in text.splitlines():
        ts, line = parse_timestamped(raw)
        out.append(LogLine(ts, *server_line(rank, line)) if server else LogLine(ts, rank, line))
    return out


def server_line(rank: int, line: str) -> tuple[int, str]:
    """(rank, text) of one line of a server pod's log: the JSON event's `rank`, else the launcher's `[rank N] `
    prefix (contract.RANK_LINE_PREFIX, removed), else `rank` (the pod's own)."""
    event = logparse.parse_line(line)
    if event is not None:
        return int(event["rank"]), line
    named, text = contract.line_rank(line)
    return (rank, line) if named is None else (named, text)


def merge(per_rank: Iterable[Sequence[LogLine]]) -> list[LogLine]:
    """All ranks' lines in time order (stable: lines of one rank keep their order; ties go to the lower rank).

    Lines without a timestamp (kept from status after the pod is gone) come first, rank by rank."""
    streams = [list(lines) for lines in per_rank]
    kept = sorted((ln for lines in streams for ln in lines if ln.ts is None), key=lambda ln: ln.rank)
    timed = [[ln for ln in lines if ln.ts is not None] for lines in streams]
    ordered = heapq.merge(*timed, key=lambda ln: (ln.ts, ln.rank))
    return [*kept, *ordered]


def keep_line(text: str, show_events: bool) -> bool:
    """Whether `logs` prints a line: JSON event lines only with --events."""
    return show_events or logparse.parse_line(text) is None


def prefix(rank: int, width: int, colour: bool, kept: bool = False) -> str:
    """`[rank 3] ` padded to the widest rank, coloured on a terminal; kept lines are marked with `*`."""
    label = f"rank {rank}" if rank >= 0 else "sched"
    text = f"[{label:<{width + 5}}]{'*' if kept else ' '}"
    if not colour:
        return text + " "
    code = COLOURS[rank % len(COLOURS)] if rank >= 0 else 37
    return f"\x1b[{code}m{text}\x1b[0m "


def format_line(line: LogLine, width: int, colour: bool) -> str:
    """One merged line as printed."""
    return prefix(line.rank, width, colour, kept=line.ts is None) + line.text


def rank_progress(text: str) -> dict[str, Any]:
    """Progress of one rank from the tail of its log (same keys as status.progress)."""
    return logparse.fold_progress({}, logparse.parse_lines(text))


def server_progress(text: str) -> dict[int, dict[str, Any]]:
    """Progress of every rank in the tail of a server pod's log (issue 21), by the events' `rank`."""
    by_rank: dict[int, list[dict[str, Any]]] = {}
    for event in logparse.parse_lines(text):
        by_rank.setdefault(int(event["rank"]), []).append(event)
    return {rank: logparse.fold_progress({}, events) for rank, events in sorted(by_rank.items())}


def fraction(progress: Mapping[str, Any]) -> float:
    """How much of the training is done, 0..1, from epoch/step (a Done stage is 1)."""
    if progress.get("stage") == status.STAGE_DONE:
        return 1.0
    epochs, spe = progress.get("epochs"), progress.get("stepsPerEpoch")
    epoch, step = progress.get("epoch") or 0, progress.get("step") or 0
    if not isinstance(epochs, int) or epochs <= 0:
        return 0.0
    if isinstance(spe, int) and spe > 0:
        return min(1.0, ((max(epoch, 1) - 1) * spe + min(step, spe)) / (epochs * spe))
    return min(1.0, epoch / epochs)


def bar(frac: float, width: int = 24) -> str:
    """A text progress bar of `width` cells (for plain output)."""
    filled = round(max(0.0, min(1.0, frac)) * width)
    return "#" * filled + "-" * (width - filled)


def rank_row(
    rank: int, pod: Mapping[str, Any], progress: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()
) -> dict[str, str]:
    """The cells of one rank in `watch`: rank, pod phase, epoch, step, loss, images/s, ETA, done fraction."""
    view = status.progress_view(progress, "Running", history) if progress else {}
    loss = progress.get("loss")
    ips = progress.get("imagesPerSecond")
    return {
        "rank": str(rank),
        "phase": str(pod.get("phase") or "?") + (f" ({pod['reason']})" if pod.get("reason") else ""),
        "epoch": str(view.get("display") or "-"),
        "step": str(view.get("stepDisplay") or "-"),
        "loss": f"{loss:.4g}" if isinstance(loss, (int, float)) else "-",
        "ips": f"{ips:.1f}" if isinstance(ips, (int, float)) else "-",
        "eta": str(view.get("eta") or "-"),
        "fraction": f"{fraction(progress):.4f}",
    }


def plain_status_line(job: Mapping[str, Any]) -> str:
    """One line about the whole job for non-terminal `watch` output."""
    st = job.get("status") or {}
    prog = st.get("progress") or {}
    parts = [f"phase={st.get('phase', 'Pending')}"]
    for key, name in (
        ("stage", "stage"),
        ("display", "epoch"),
        ("stepDisplay", "step"),
        ("loss", "loss"),
        ("imagesPerSecond", "images/s"),
        ("eta", "eta"),
    ):
        if prog.get(key) is not None:
            parts.append(f"{name}={prog[key]}")
    if (st.get("result") or {}).get("top1") is not None:
        parts.append(f"top1={st['result']['top1']}")
    if st.get("restarts"):
        parts.append(f"restarts={st['restarts']}")
    if st.get("reason"):
        parts.append(f"reason={st['reason']}")
    return " ".join(parts)


def series(
    history: Sequence[Mapping[str, Any]], key: str, steps_per_epoch: int = 1
) -> list[tuple[int, float]]:
    """(x, value) pairs of one history key, finite values only; x is the epoch, or with `steps_per_epoch` the
    global step at the end of that epoch."""
    out = []
    for entry in history:
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out.append((int(entry["epoch"]) * max(1, steps_per_epoch), float(value)))
    return out


def text_chart(
    points: Sequence[tuple[int, float]],
    width: int = 60,
    height: int = 10,
    title: str = "",
    unit: str = "epoch",
) -> str:
    """A small text chart of (x, y) points: y axis labels left, one `*` per column, x range below."""
    if not points:
        return f"{title}: no data yet"
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    lo, hi = min(ys), max(ys)
    span = hi - lo or 1.0
    x0, x1 = min(xs), max(xs)
    cols = max(1, min(width, len(points))) if x1 == x0 else width
    grid = [[" "] * cols for _ in range(height)]
    for x, y in points:
        col = 0 if x1 == x0 else round((x - x0) / (x1 - x0) * (cols - 1))
        row = height - 1 - round((y - lo) / span * (height - 1))
        grid[row][col] = "*"
    labels = [f"{hi:.4g}", f"{lo:.4g}"]
    pad = max(len(s) for s in labels)
    lines = [title] if title else []
    for i, row in enumerate(grid):
        label = labels[0] if i == 0 else labels[1] if i == height - 1 else ""
        lines.append(f"{label:>{pad}} |{''.join(row)}")
    lines.append(f"{'':>{pad}} +{'-' * cols}")
    lines.append(
        f"{'':>{pad}}  {unit} {x0}"
        + (
            f"{'':>{max(1, cols - 2 - 2 * len(unit) - len(str(x0)) - len(str(x1)))}}{unit} {x1}"
            if x1 != x0
            else ""
        )
    )
    return "\n".join(lines)


def timeline(job: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(time, what, detail) rows, oldest first: creation, condition transitions, the job's Events."""
    meta = job.get("metadata") or {}
    st = job.get("status") or {}
    rows = [
        (str(meta.get("creationTimestamp") or ""), "Applied", f"generation {meta.get('generation', '?')}")
    ]
    for cond in st.get("conditions") or []:
        if cond.get("status") == "True":
            rows.append(
                (
                    str(cond.get("lastTransitionTime") or ""),
                    str(cond.get("type")),
                    f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": "),
                )
            )
    seen = {(r[1], r[0]) for r in rows}
    for ev in events:
        when = str(ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp") or "")
        reason = str(ev.get("reason") or "")
        if (reason, when) in seen:
            continue
        count = f" (x{ev['count']})" if isinstance(ev.get("count"), int) and ev["count"] > 1 else ""
        rows.append((when, f"Event {reason}", str(ev.get("message") or "") + count))
    return sorted(rows, key=lambda r: parse_time(r[0]) or 0.0)


def restarts(job: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why the gang restarted: the restart-related Events' messages, else the counter alone."""
    st = job.get("status") or {}
    count = int(st.get("restarts") or 0)
    why = [
        f"{ev.get('lastTimestamp') or ev.get('firstTimestamp') or ''} {ev.get('reason')}: {ev.get('message')}"
        for ev in events
        if ev.get("reason") in ("GangRestart", "RankFailed")
        or (ev.get("type") == "Warning" and "restart" in str(ev.get("message", "")).lower())
    ]
    if not count and not why:
        return []
    return [
        f"{count} whole-gang restart(s)"
        + (f", last at {st['restartTime']}" if st.get("restartTime") else ""),
        *why,
    ]


def rank_table_rows(ranks_json: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(rank_id, pod, server_id, device_id) rows of ranks.json, by rank."""
    rows = [
        (str(v.get("rank_id", "?")), str(pod), str(v.get("server_id", "")), str(v.get("device_id", "")))
        for pod, v in ranks_json.items()
    ]
    return sorted(rows, key=lambda r: int(r[0]) if r[0].isdigit() else 1 << 30)
