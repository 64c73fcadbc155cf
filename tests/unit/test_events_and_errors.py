"""Log-line formats, the termination message and the exit-code mapping of docs/contracts.md."""

import io
import json

import pytest

from zoo_workloads import errors, events


def test_event_line_has_event_ts_rank_and_fields():
    line = events.format_event("step", 3, {"epoch": 1, "step": 2, "loss": 1.5}, ts=12.5)
    record = json.loads(line)
    assert line.startswith("{") and "\n" not in line
    assert record == {"event": "step", "ts": 12.5, "rank": 3, "epoch": 1, "step": 2, "loss": 1.5}


def test_nan_loss_becomes_null_not_invalid_json():
    record = json.loads(events.format_event("epoch", 0, {"loss": float("nan")}))
    assert record["loss"] is None


def test_unknown_event_is_refused():
    with pytest.raises(ValueError, match="allowed"):
        events.format_event("progress", 0, {})


def test_human_lines_match_the_zoo():
    assert events.format_step_line(1, 1251, 5.7213381) == "epoch: 1 step: 1251, loss is 5.721338"
    line = events.format_result_line({"top_1_accuracy": 0.7847, "top_5_accuracy": 0.9412})
    assert line == "result: {'top_1_accuracy': 0.7847, 'top_5_accuracy': 0.9412}"


def test_event_log_flushes_lines_and_no_progress_bar_off_tty():
    stream = io.StringIO()
    log = events.EventLog(2, stream)
    log.emit("done", metrics={"top_1_accuracy": 0.5}, checkpoint=None, epochs=1)
    log.progress(1, 10, 0.5)  # StringIO is not a TTY: nothing written
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["rank"] == 2


def test_termination_success_and_failure(tmp_path, monkeypatch):
    path = tmp_path / "term"
    monkeypatch.setenv("ZOO_TERMINATION_LOG", str(path))
    assert events.write_termination(events.success_message({"top_1_accuracy": 0.9}, "/o/m-best.ckpt", 3))
    assert json.loads(path.read_text()) == {
        "status": "succeeded",
        "metrics": {"top_1_accuracy": 0.9},
        "checkpoint": "/o/m-best.ckpt",
        "epochs": 3,
    }
    failure = errors.classify(errors.DatasetMissing("dataset directory /d does not exist"))
    events.write_termination(events.failure_message(failure))
    assert json.loads(path.read_text()) == {
        "status": "failed",
        "reason": "DatasetMissing",
        "message": "dataset directory /d does not exist",
        "retryable": False,
    }


def test_termination_stays_under_4k():
    huge = events.failure_message(errors.Failure(1, "UnexpectedError", "x" * 10000, False))
    assert len(events.encode_termination(huge).encode()) < 4096
    metrics = {f"m{i}": 0.5 for i in range(500)} | {"top_1_accuracy": 0.7}
    text = events.encode_termination(events.success_message(metrics, None, 1))
    assert len(text.encode()) < 4096 and json.loads(text)["metrics"] == {"top_1_accuracy": 0.7}


def test_unwritable_termination_file_warns_and_continues(tmp_path, capsys):
    assert not events.write_termination({"status": "succeeded"}, str(tmp_path / "missing" / "dir" / "t"))
    assert "cannot write termination message" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("exc", "code", "reason", "retryable"),
    [
        (errors.ConfigError("bad"), 64, "ConfigError", False),
        (errors.DatasetMissing("gone"), 66, "DatasetMissing", False),
        (errors.PeerLost("lost"), 75, "PeerLost", True),
        (errors.RankTableTimeout("slow"), 75, "RankTableTimeout", True),
        (RuntimeError("Heartbeat timed out for node 1"), 75, "PeerLost", True),
        (TimeoutError("collective"), 75, "PeerLost", True),
        (RuntimeError("shape mismatch in Conv2D"), 1, "UnexpectedError", False),
        (ValueError("oops"), 1, "UnexpectedError", False),
    ],
)
def test_exit_code_mapping(exc, code, reason, retryable):
    failure = errors.classify(exc)
    assert (failure.exit_code, failure.reason, failure.retryable) == (code, reason, retryable)
    assert "\n" not in failure.message


def test_one_line_collapses_tracebacks():
    assert errors.one_line("a\n  b\tc") == "a b c"
    assert len(errors.one_line("y" * 2000)) == 600


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_is_erased_before_the_next_line():
    stream = _Tty()
    log = events.EventLog(0, stream)
    log.progress(5, 10, 0.25)
    log.human("epoch: 1 step: 5, loss is 0.250000")
    text = stream.getvalue()
    assert text.startswith("\r[###############...............] 5/10 loss 0.2500")
    assert text.endswith("\r\033[Kepoch: 1 step: 5, loss is 0.250000\n")


def test_mindspore_collective_failure_is_peer_lost_with_a_readable_message():
    # what a surviving worker raised when its peer was killed (MindSpore 2.10, CPU, mccl)
    text = (
        "----------------------------------------------------\n- Kernel error:\n"
        "----------------------------------------------------\n"
        "Launch kernel failed: Default/grad_reducer-DistributedGradReducer/AllReduce-op22\n"
        "----------------------------------------------------\n- C++ Call Stack: (For framework developers)\n"
        "----------------------------------------------------\nkernel_actor.cc:995 OnMemoryAllocFinish\n"
    )
    failure = errors.classify(RuntimeError(text))
    assert (failure.exit_code, failure.reason, failure.retryable) == (75, "PeerLost", True)
    assert failure.message == (
        "RuntimeError: - Kernel error: Launch kernel failed: Default/grad_reducer-DistributedGradReducer/AllReduce-op22"
    )
