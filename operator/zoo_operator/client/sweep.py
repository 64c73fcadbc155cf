"""Hyperparameter sweeps as plain data: grid expansion, seeded random sampling, the median stopping rule and the
rows of the compare table. No API here; `zoo_operator.client.api` and `kubectl ztj sweep` drive these.

A sweep is not a resource of its own (docs/sweeps.md): its trials are ordinary ZooTrainingJobs labelled
`modelzoo.io/sweep=<name>` and `modelzoo.io/trial=<index>`, so `kubectl get ztj -l modelzoo.io/sweep=NAME` lists it.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LABEL_SWEEP = "modelzoo.io/sweep"
LABEL_TRIAL = "modelzoo.io/trial"
ANNOTATION_PARAMS = "modelzoo.io/sweep-params"  # the trial's point, as JSON, for `compare`
MAX_TRIALS = 1000
# Metrics of status.history and whether bigger is better.
METRICS = {"top1": True, "top5": True, "loss": False}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SweepError(ValueError):
    """A sweep definition that cannot be run; the message names the parameter."""


def check_name(name: str) -> None:
    """A sweep name must be a label value and leave room for `-<index>` in a job name (63 characters)."""
    if not _NAME.match(name) or len(name) > 40:
        raise SweepError(f"sweep name {name!r}: lowercase letters, digits and '-', at most 40 characters")


def grid(space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the listed values, the last parameter varying fastest (sklearn's ParameterGrid order
    for the given key order)."""
    for key, values in space.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise SweepError(f"grid parameter {key}: give a non-empty list of values")
    keys = list(space)
    points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(space[k] for k in keys))]
    if len(points) > MAX_TRIALS:
        raise SweepError(f"grid has {len(points)} points; at most {MAX_TRIALS}")
    return points


def _sample(key: str, dist: Any, rng: random.Random) -> Any:
    """One value: a list is a choice; {"min", "max"} is uniform; add "log": true for log-uniform; "int": true
    rounds (integers)."""
    if isinstance(dist, Sequence) and not isinstance(dist, (str, bytes)):
        if not dist:
            raise SweepError(f"random parameter {key}: empty list")
        return rng.choice(list(dist))
    if not isinstance(dist, Mapping) or "min" not in dist or "max" not in dist:
        raise SweepError(f"random parameter {key}: a list of choices or {{min, max[, log, int]}}")
    lo, hi = float(dist["min"]), float(dist["max"])
    if not lo <= hi:
        raise SweepError(f"random parameter {key}: min {lo} > max {hi}")
    if dist.get("log"):
        if lo <= 0:
            raise SweepError(f"random parameter {key}: log scale needs min > 0")
        value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    else:
        value = rng.uniform(lo, hi)
    return round(value) if dist.get("int") else float(f"{value:.6g}")


def random_points(space: Mapping[str, Any], trials: int, seed: int) -> list[dict[str, Any]]:
    """`trials` points drawn with random.Random(seed): the same seed gives the same sweep."""
    if not 1 <= trials <= MAX_TRIALS:
        raise SweepError(f"trials: between 1 and {MAX_TRIALS}, not {trials}")
    rng = random.Random(seed)
    return [{key: _sample(key, dist, rng) for key, dist in space.items()} for _ in range(trials)]


def trial_name(sweep: str, index: int) -> str:
    """The ZooTrainingJob name of trial `index`."""
    return f"{sweep}-{index}"


def trial_body(
    template: Mapping[str, Any], sweep: str, index: int, point: Mapping[str, Any]
) -> dict[str, Any]:
    """The job of one trial: the template with the point merged into spec.hyperparameters, named and labelled."""
    body = copy.deepcopy(dict(template))
    meta = body.setdefault("metadata", {})
    meta.pop("generateName", None)
    meta["name"] = trial_name(sweep, index)
    meta.setdefault("labels", {}).update({LABEL_SWEEP: sweep, LABEL_TRIAL: str(index)})
    meta.setdefault("annotations", {})[ANNOTATION_PARAMS] = json.dumps(dict(point), sort_keys=True)
    spec = body.setdefault("spec", {})
    spec["hyperparameters"] = {**(spec.get("hyperparameters") or {}), **point}
    return body


def best_so_far(history: Sequence[Mapping[str, Any]], metric: str, epoch: int) -> float | None:
    """The best value of `metric` over the entries up to `epoch`, or None when none has it."""
    bigger = METRICS[metric]
    values = [
        float(e[metric])
        for e in history
        if isinstance(e.get("epoch"), int) and e["epoch"] <= epoch and isinstance(e.get(metric), (int, float))
    ]
    if not values:
        return None
    return max(values) if bigger else min(values)


@dataclass(frozen=True)
class StopRule:
    """Median stopping (Golovin et al., "Google Vizier", KDD 2017, section 3.2.2): from epoch `after` on, a trial
    whose best metric so far is worse than the median of the other trials' best at the same epoch is stopped,
    provided at least `min_peers` others reached that epoch."""

    metric: str = "top1"
    after: int = 1
    min_peers: int = 2


def losers(
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    rule: StopRule,
    finished: frozenset[str] = frozenset(),
) -> list[str]:
    """Names of the running trials (not in `finished`) to stop now under `rule`, in name order."""
    if rule.metric not in METRICS:
        raise SweepError(f"metric {rule.metric!r}: one of {', '.join(METRICS)}")
    bigger = METRICS[rule.metric]
    out = []
    for name, history in sorted(histories.items()):
        if name in finished or not history:
            continue
        epoch = max(int(e.get("epoch") or 0) for e in history)
        if epoch < rule.after:
            continue
        mine = best_so_far(history, rule.metric, epoch)
        peers = [
            best_so_far(h, rule.metric, epoch)
            for other, h in histories.items()
            if other != name and h and max(int(e.get("epoch") or 0) for e in h) >= epoch
        ]
        values = [v for v in peers if v is not None]
        if mine is None or len(values) < rule.min_peers:
            continue
        median = statistics.median(values)
        if (mine < median) if bigger else (mine > median):
            out.append(name)
    return out


def compare_rows(
    jobs: Sequence[Mapping[str, Any]], metric: str = "top1"
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of `kubectl ztj compare`: one row per trial, best first by `metric`, then the trial
    index. Columns: trial, phase, each swept parameter, epochs, best metric, final loss."""
    params: list[str] = []
    entries = []
    for job in jobs:
        meta = job.get("metadata") or {}
        try:
            point = json.loads((meta.get("annotations") or {}).get(ANNOTATION_PARAMS) or "{}")
        except ValueError:
            point = {}
        for key in point:
            if key not in params:
                params.append(key)
        status = job.get("status") or {}
        history = status.get("history") or []
        epochs = max((int(e.get("epoch") or 0) for e in history), default=0)
        best = best_so_far(history, metric, epochs) if history else None
        losses = [e["loss"] for e in sorted(history, key=lambda e: e.get("epoch") or 0) if "loss" in e]
        entries.append((meta, point, status, epochs, best, losses[-1] if losses else None))
    bigger = METRICS.get(metric, True)

    def order(item: Any) -> tuple[int, float, int]:
        meta, best = item[0], item[4]
        index = int((meta.get("labels") or {}).get(LABEL_TRIAL) or 0)
        if best is None:
            return (1, 0.0, index)
        return (0, -best if bigger else best, index)

    header = ["TRIAL", "PHASE", *params, "EPOCHS", f"BEST {metric.upper()}", "FINAL LOSS"]
    rows = []
    for meta, point, status, epochs, best, loss in sorted(entries, key=order):
        rows.append(
            [
                str(meta.get("name", "")),
                str(status.get("phase") or "-"),
                *[_cell(point.get(p)) for p in params],
                str(epochs),
                "-" if best is None else f"{best:.4g}",
                "-" if loss is None else f"{loss:.4g}",
            ]
        )
    return header, rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _value(text: str) -> Any:
    """A flag value parsed as YAML (`0.1` a float, `4` an int, `sgd` a string), as `zoo-train --set` does."""
    import yaml

    return yaml.safe_load(text)


def parse_grid_flag(text: str) -> tuple[str, list[Any]]:
    """`KEY=V1,V2,...` -> (KEY, [V1, V2, ...])."""
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise SweepError(f"--grid {text!r}: write KEY=VALUE1,VALUE2,...")
    return key, [_value(v) for v in values.split(",")]


def parse_random_flag(text: str) -> tuple[str, Any]:
    """`KEY=MIN:MAX[:log][:int]` (a range) or `KEY=A,B,C` (a choice) -> (KEY, distribution for random_points)."""
    key, sep, rest = text.partition("=")
    if not sep or not key or not rest:
        raise SweepError(f"--random {text!r}: write KEY=MIN:MAX[:log][:int] or KEY=A,B,C")
    if ":" not in rest:
        return key, [_value(v) for v in rest.split(",")]
    parts = rest.split(":")
    flags = set(parts[2:])
    if len(parts) < 2 or flags - {"log", "int"}:
        raise SweepError(f"--random {text!r}: write KEY=MIN:MAX[:log][:int]")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise SweepError(f"--random {text!r}: MIN and MAX must be numbers") from None
    return key, {"min": lo, "max": hi, "log": "log" in flags, "int": "int" in flags}
