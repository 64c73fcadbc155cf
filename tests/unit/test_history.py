"""status.history (per-epoch curve, bounded) and the progress columns (stage, 3/10, ETA)."""

from __future__ import annotations

import itertools
import json

from zoo_operator import conditions as c
from zoo_operator import history, status
from zoo_operator.podview import format_time

T0 = 1_760_000_000.0


def epoch_ev(epoch: int, ts: float, loss: float = 1.0, seconds: float = 10.0) -> dict:
    return {
        "event": "epoch",
        "ts": ts,
        "rank": 0,
        "epoch": epoch,
        "epochs": 300,
        "loss": loss,
        "epoch_seconds": seconds,
        "images_per_second": 123.456789,
    }


def eval_ev(epoch: int, top1: float, top5: float = 0.9) -> dict:
    return {
        "event": "eval",
        "ts": T0,
        "rank": 0,
        "epoch": epoch,
        "metrics": {"top_1_accuracy": top1, "top_5_accuracy": top5, "loss": 2.0},
    }


def test_fold_joins_epoch_and_eval_events() -> None:
    events = [
        {"event": "start", "ts": T0, "rank": 0, "epochs": 2},
        {"event": "step", "ts": T0 + 1, "rank": 0, "epoch": 1, "step": 1, "loss": 9.0},
        epoch_ev(1, T0 + 10, loss=2.123456789),
        eval_ev(1, 0.41234567),
        epoch_ev(2, T0 + 20, loss=1.5),
    ]
    got = history.fold([], events)
    assert got == [
        {
            "epoch": 1,
            "loss": 2.1235,
            "imagesPerSecond": 123.46,
            "seconds": 10.0,
            "time": format_time(T0 + 10),
            "top1": 0.4123,
            "top5": 0.9,
        },
        {"epoch": 2, "loss": 1.5, "imagesPerSecond": 123.46, "seconds": 10.0, "time": format_time(T0 + 20)},
    ]
    # The done event gives the last epoch its accuracy when no eval came for it.
    done = {"event": "done", "ts": T0 + 21, "rank": 0, "epochs": 2, "metrics": {"top_1_accuracy": 0.5}}
    assert history.fold(got, [done])[-1]["top1"] == 0.5
    # Folding the same log tail again changes nothing (the operator re-reads it every poll).
    assert history.fold(got, events) == got


def test_fold_keeps_epochs_that_left_the_log_tail() -> None:
    first = history.fold([], [epoch_ev(1, T0 + 10), epoch_ev(2, T0 + 20)])
    later = history.fold(first, [epoch_ev(3, T0 + 30)])
    assert [e["epoch"] for e in later] == [1, 2, 3]


def test_a_restart_from_scratch_drops_the_old_attempts_later_epochs() -> None:
    old = history.fold([], [epoch_ev(e, T0 + 10 * e, loss=5.0) for e in (1, 2, 3)])
    # The gang restarted without a checkpoint: a newer epoch-1 event.
    new = history.fold(old, [epoch_ev(1, T0 + 100, loss=4.0)])
    assert [(e["epoch"], e["loss"]) for e in new] == [(1, 4.0)]
    # merge (status <- rank 0's fold) does the same across pods and operator restarts.
    assert [(e["epoch"], e["loss"]) for e in history.merge(old, new)] == [(1, 4.0)]
    # An older re-read of epoch 1 does not drop anything.
    assert history.merge(old, history.fold([], [epoch_ev(1, T0 + 10, loss=5.0)])) == old


def test_history_is_bounded_and_thinned_evenly() -> None:
    events = [epoch_ev(e, T0 + e) for e in range(1, 1001)]
    got = history.fold([], events)
    epochs = [e["epoch"] for e in got]
    assert len(got) <= history.MAX_ENTRIES
    assert epochs[0] == 1 and epochs[-1] == 1000  # the start and the latest are always there
    gaps = {b - a for a, b in itertools.pairwise(epochs[1:-1])}
    assert gaps == {8}  # evenly: 1000 epochs / stride 8 = 125 points
    # Stable: thinning again keeps the same points, and growing one epoch keeps the older points.
    assert history.thin(got) == got
    grown = history.fold(got, [epoch_ev(1001, T0 + 1001)])
    assert set(epochs[1:-1]) <= {e["epoch"] for e in grown}
    # Small enough for status: well under the apiserver's ~1.5 MiB request limit.
    assert len(json.dumps(got)) < 40_000


def test_progress_view_columns() -> None:
    hist = [{"epoch": 1, "seconds": 100.0}]
    view = status.progress_view({"epoch": 2, "epochs": 3, "step": 50, "stepsPerEpoch": 100}, c.RUNNING, hist)
    # 50 steps of epoch 2 and 100 of epoch 3 left, one step takes 1 s.
    assert view["display"] == "2/3" and view["stepDisplay"] == "50/100" and view["eta"] == "2m30s"
    assert view["stage"] == status.STAGE_TRAINING
    # Before the first epoch ends: from the global batch and images/s (16 images / 8 per s = 2 s a step).
    early = status.progress_view(
        {
            "epoch": 1,
            "epochs": 1,
            "step": 10,
            "stepsPerEpoch": 40,
            "globalBatchSize": 16,
            "imagesPerSecond": 8.0,
        },
        c.RUNNING,
    )
    assert early["eta"] == "1m00s"
    # ... but not from the first step, whose time includes the graph compilation.
    first = status.progress_view(
        {
            "epoch": 1,
            "epochs": 1,
            "step": 1,
            "stepsPerEpoch": 40,
            "globalBatchSize": 16,
            "imagesPerSecond": 0.5,
        },
        c.RUNNING,
    )
    assert "eta" not in first
    assert status.progress_view({}, c.RUNNING)["stage"] == status.STAGE_STARTING
    compiling = status.progress_view({"epochs": 3, "stepsPerEpoch": 10}, c.RUNNING)
    assert compiling["stage"] == status.STAGE_COMPILING and compiling["display"] == "0/3"


def test_succeeded_progress_is_complete() -> None:
    mid = {"epoch": 2, "epochs": 3, "step": 7, "stepsPerEpoch": 10, "stage": "Training", "eta": "1m00s"}
    done = status.progress_view(mid, c.SUCCEEDED)
    assert done["display"] == "3/3" and done["stepDisplay"] == "10/10" and done["stage"] == status.STAGE_DONE
    assert "eta" not in done


def test_format_duration() -> None:
    assert [status.format_duration(s) for s in (0, 59.4, 185, 7620, 3 * 86400 + 4 * 3600)] == [
        "0s",
        "59s",
        "3m05s",
        "2h07m",
        "3d04h",
    ]
    assert status.format_duration(None) is None and status.format_duration(float("nan")) is None
