"""Log lines and termination messages: parse the contract's JSON, ignore everything else."""

from __future__ import annotations

import json

import pytest

from zoo_operator import logparse

LOG = "\n".join(
    [
        "loading dataset from /zoo/data/train",
        json.dumps(
            {
                "event": "start",
                "ts": 1.0,
                "rank": 0,
                "model": "m",
                "rank_size": 2,
                "epochs": 3,
                "steps_per_epoch": 10,
                "batch_size": 4,
                "device": "CPU",
            }
        ),
        "epoch: 1 step: 1, loss is 5.721338",
        json.dumps(
            {
                "event": "step",
                "ts": 2.0,
                "rank": 0,
                "epoch": 1,
                "step": 1,
                "steps_per_epoch": 10,
                "loss": 5.72,
                "images_per_second": 12.5,
            }
        ),
        '{"event": "step", "broken json',
        json.dumps(
            {
                "event": "epoch",
                "ts": 3.0,
                "rank": 0,
                "epoch": 1,
                "epochs": 3,
                "loss": 4.5,
                "epoch_seconds": 9.0,
                "images_per_second": 13.0,
            }
        ),
        json.dumps({"event": "eval", "ts": 4.0, "rank": 0, "epoch": 1, "metrics": {"top_1_accuracy": 0.5}}),
        "result: {'top_1_accuracy': 0.5}",
    ]
)


def test_only_contract_lines_are_events() -> None:
    events = logparse.parse_lines(LOG)
    assert [e["event"] for e in events] == ["start", "step", "epoch", "eval"]


@pytest.mark.parametrize(
    "line",
    [
        "",
        "plain text",
        "{not json}",
        "[1, 2]",
        '{"event": "step"}',
        '{"event": "nope", "ts": 1, "rank": 0}',
        '{"event": "step", "rank": "0"}',
        '{"event": "step", "rank": true}',
    ],
)
def test_other_lines_are_ignored(line: str) -> None:
    assert logparse.parse_line(line) is None


def test_progress_folds_events() -> None:
    progress = logparse.fold_progress({}, logparse.parse_lines(LOG))
    assert progress == {
        "epochs": 3,
        "stepsPerEpoch": 10,
        "epoch": 1,
        "step": 1,
        "loss": 4.5,
        "imagesPerSecond": 13.0,
        "globalBatchSize": 8,
    }


def test_progress_keeps_old_values_on_malformed_fields() -> None:
    start = {"epoch": 2, "loss": 1.5}
    bad = [{"event": "step", "rank": 0, "epoch": "x", "loss": float("nan"), "step": -1}]
    assert logparse.fold_progress(start, bad) == start


def test_record_from_done_event_and_eval_fallback() -> None:
    events = logparse.parse_lines(LOG)
    record = logparse.record_from_events(events)
    assert record is not None and record["metrics"] == {"top_1_accuracy": 0.5}
    done = {
        "event": "done",
        "rank": 0,
        "metrics": {"top_1_accuracy": 0.7, "top_5_accuracy": 0.9, "loss": 1.1},
        "checkpoint": "/zoo/checkpoint/j/last.ckpt",
        "epochs": 3,
    }
    assert logparse.record_from_events([*events, done]) == done  # the done event as printed wins over evals
    assert logparse.record_from_events([]) is None


def test_last_lines_are_bounded() -> None:
    text = "\n".join(f"line {i}" for i in range(100)) + "\n" + "x" * 1000 + "\n\n"
    lines = logparse.last_lines(text, 3)
    assert lines[:2] == ["line 98", "line 99"]
    assert len(lines[2]) == logparse.MAX_LINE_CHARS and lines[2].endswith("...")
    assert logparse.last_lines(text, 0) == []


def test_termination_message() -> None:
    ok = '{"status": "succeeded", "metrics": {"top_1_accuracy": 0.8}, "checkpoint": null, "epochs": 2}'
    assert logparse.parse_termination(ok)["metrics"] == {"top_1_accuracy": 0.8}
    for bad in (None, "", "Error: boom", '{"status": "maybe"}', "[]"):
        assert logparse.parse_termination(bad) is None


def test_printed_numbers_are_short() -> None:
    """LOSS and TOP-1 are printer columns: `kubectl get ztj` shows them verbatim, so they are cut to a few
    significant digits; the full metrics stay in result.metrics."""
    step = {"event": "step", "rank": 0, "epoch": 1, "step": 2, "loss": 2.0377814769744873}
    assert logparse.fold_progress({}, [step])["loss"] == 2.0378
    tiny = {"event": "epoch", "rank": 0, "epoch": 9, "epochs": 9, "loss": 0.000123456789}
    assert logparse.fold_progress({}, [tiny])["loss"] == 0.00012346
    result = logparse.result_from_metrics({"top_1_accuracy": 0.07777777777777778}, None)
    assert result["top1"] == 0.07778 and result["metrics"]["top_1_accuracy"] == 0.07777777777777778


def test_last_lines_keep_human_lines_only() -> None:
    text = "\n".join(
        [
            "[WARNING] ME(8:140012,MainProcess):2026-12-02-03:14:40.123.456 [mindspore/common/_decorator.py:40] old",
            "epoch: 1 step: 1, loss is 5.721338",
            json.dumps(
                {
                    "event": "step",
                    "ts": 2.0,
                    "rank": 0,
                    "epoch": 1,
                    "step": 1,
                    "steps_per_epoch": 10,
                    "loss": 5.72,
                    "images_per_second": 12.5,
                }
            ),
            "[INFO] MD(8,7f,python):2026-12-02-03:14:41.000.000 [mindspore/ccsrc/minddata/x.cc:10] pipeline",
            "[ERROR] ME(8:140012,MainProcess):2026-12-02-03:14:42.000.000 [x.py:1] the graph failed",
            "{not an event, kept}",
            "result: {'top_1_accuracy': 0.5}",
        ]
    )
    assert logparse.last_lines(text, 10) == [
        "epoch: 1 step: 1, loss is 5.721338",
        "[ERROR] ME(8:140012,MainProcess):2026-12-02-03:14:42.000.000 [x.py:1] the graph failed",
        "{not an event, kept}",
        "result: {'top_1_accuracy': 0.5}",
    ]
    # The count is of human lines: machine lines never push a human line out.
    assert logparse.last_lines(text + "\n" + json.dumps({"event": "done", "ts": 9, "rank": 0}), 1) == [
        "result: {'top_1_accuracy': 0.5}"
    ]
