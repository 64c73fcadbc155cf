"""Per-epoch training history kept in `status.history` for the job's whole life (pure).

One entry per epoch: loss, images/s and seconds from the `epoch` event, top-1/top-5 from the `eval` event of
that epoch (or the `done` event's metrics for the last epoch). The operator re-reads the tail of rank 0's log on
every poll, so folding the same events again changes nothing; entries of epochs already out of the log tail stay.

Bounded: at most MAX_ENTRIES entries. Beyond that, the history is thinned evenly and stably: only epochs that are
a multiple of a power-of-two stride are kept (plus the first and the latest), the stride doubling as needed, so
200 entries of ~120 bytes stay far below the apiserver's 1.5 MiB object limit whatever the epoch count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from zoo_operator import schema
from zoo_operator.podview import format_time, parse_time

MAX_ENTRIES = schema.HISTORY_MAX


def _num(value: Any, digits: int = 5) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(f"{float(value):.{digits}g}")


def _epoch(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _accuracy(entry: dict[str, Any], metrics: Any) -> None:
    if not isinstance(metrics, Mapping):
        return
    for key, name in (("top1", "top_1_accuracy"), ("top5", "top_5_accuracy")):
        value = _num(metrics.get(name), 4)
        if value is not None:
            entry[key] = value


def thin(entries: Sequence[Mapping[str, Any]], limit: int = MAX_ENTRIES) -> list[dict[str, Any]]:
    """At most `limit` entries (sorted by epoch): epochs that are multiples of the smallest power-of-two stride
    that fits, plus the first and the last entry. Thinning a thinned history again keeps the same points."""
    out = sorted((dict(e) for e in entries), key=lambda e: e["epoch"])
    if len(out) <= limit:
        return out
    first, last = out[0], out[-1]
    stride = 1
    while True:
        stride *= 2
        kept = [e for e in out if e["epoch"] % stride == 0 and e is not first and e is not last]
        if len(kept) + 2 <= limit:
            return [first, *kept, last]


def fold(
    history: Sequence[Mapping[str, Any]], events: Iterable[Mapping[str, Any]], limit: int = MAX_ENTRIES
) -> list[dict[str, Any]]:
    """History after `events` (rank 0's parsed log events, in log order), starting from `history`.

    A newer `epoch` event for an epoch lower than entries already kept means the training went back (a restart
    without a checkpoint): those later entries belong to the earlier attempt and are dropped.
    """
    by_epoch: dict[int, dict[str, Any]] = {
        int(e["epoch"]): dict(e) for e in history if _epoch(e.get("epoch"))
    }
    for ev in events:
        kind = ev.get("event")
        epoch = _epoch(ev.get("epoch"))
        if kind == "epoch" and epoch is not None:
            ts = _num(ev.get("ts"), 15)
            if ts is not None:
                for later in [k for k, e in by_epoch.items() if k > epoch]:
                    seen = parse_time(by_epoch[later].get("time"))
                    if seen is not None and int(ts) > seen:
                        del by_epoch[later]
            entry = by_epoch.setdefault(epoch, {"epoch": epoch})
            for key, value in (
                ("loss", _num(ev.get("loss"))),
                ("imagesPerSecond", _num(ev.get("images_per_second"))),
                ("seconds", _num(ev.get("epoch_seconds"), 4)),
            ):
                if value is not None:
                    entry[key] = value
            if ts is not None:
                entry["time"] = format_time(ts)
        elif kind == "eval" and epoch is not None:
            _accuracy(by_epoch.setdefault(epoch, {"epoch": epoch}), ev.get("metrics"))
        elif kind == "done":
            last = _epoch(ev.get("epochs")) or (max(by_epoch) if by_epoch else None)
            if last is not None and last in by_epoch and "top1" not in by_epoch[last]:
                _accuracy(by_epoch[last], ev.get("metrics"))
    return thin(list(by_epoch.values()), limit)


def merge(
    kept: Sequence[Mapping[str, Any]], fresh: Sequence[Mapping[str, Any]], limit: int = MAX_ENTRIES
) -> list[dict[str, Any]]:
    """The history in status (`kept`) updated with a freshly folded one (`fresh`, from the current rank 0's log):
    fresh entries win per epoch, and fresh entries newer than kept later epochs drop those (see `fold`)."""
    if not fresh:
        return thin(kept, limit)
    out = {int(e["epoch"]): dict(e) for e in kept if _epoch(e.get("epoch"))}
    newest_fresh = max((parse_time(e.get("time")) or 0.0 for e in fresh), default=0.0)
    top = max(int(e["epoch"]) for e in fresh)
    for epoch in [k for k, e in out.items() if k > top]:
        seen = parse_time(out[epoch].get("time"))
        if seen is not None and newest_fresh > seen:
            del out[epoch]
    for entry in fresh:
        out[int(entry["epoch"])] = {**out.get(int(entry["epoch"]), {}), **entry}
    return thin(list(out.values()), limit)
