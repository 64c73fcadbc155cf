"""Status writes that always fit, and problems logged once per change (issue 11)."""

from __future__ import annotations

from typing import Any

from zoo_operator import limits


def status_with(lines_per_rank: int, line_chars: int, ranks: int, message_chars: int = 50) -> dict[str, Any]:
    summaries = [
        {
            "rank": i,
            "pod": f"j-worker-{i}",
            "phase": "Running",
            "lastLines": ["x" * line_chars] * lines_per_rank,
        }
        for i in range(ranks)
    ]
    if ranks > 3:
        summaries[3]["exitCode"] = 1
    return {
        "phase": "Running",
        "reason": "AllRanksRunning",
        "message": "m" * message_chars,
        "conditions": [{"type": "Running", "status": "True", "message": "c" * message_chars}],
        "rankSummaries": summaries,
    }


def test_small_status_is_untouched() -> None:
    status = status_with(20, 80, 4)
    assert limits.bound_status(status) == status


def test_long_lines_are_cut_first() -> None:
    status = status_with(20, 100_000, 4)  # 8 MB of log lines
    out = limits.bound_status(status)
    assert limits.size(out) <= limits.STATUS_MAX_BYTES
    assert len(out["rankSummaries"]) == 4 and out["message"] == status["message"]
    assert all(
        len(line) <= limits.LINE_CHARS for s in out["rankSummaries"] for line in s.get("lastLines", [])
    )
    assert out["rankSummaries"][0]["lastLines"], "rank 0 keeps its lines"
    assert status["rankSummaries"][0]["lastLines"][0] == "x" * 100_000, "the input is not changed"


def test_many_ranks_keep_rank0_and_failed_lines() -> None:
    out = limits.bound_status(status_with(20, 500, 400))
    assert limits.size(out) <= limits.STATUS_MAX_BYTES
    with_lines = [s["rank"] for s in out["rankSummaries"] if s.get("lastLines")]
    assert with_lines == [0, 3]


def test_huge_messages_are_cut_and_phase_survives() -> None:
    out = limits.bound_status(status_with(1, 10, 2, message_chars=2_800_000))
    assert limits.size(out) <= limits.STATUS_MAX_BYTES
    assert out["phase"] == "Running" and len(out["message"]) <= limits.MESSAGE_CHARS
    assert "(2800000 characters)" in out["message"]
    assert len(out["conditions"][0]["message"]) <= limits.MESSAGE_CHARS


def test_any_status_fits_even_with_a_tiny_budget() -> None:
    out = limits.bound_status(status_with(20, 1000, 4000, message_chars=5000), limit=4096)
    assert limits.size(out) <= 4096 and out["phase"] == "Running"


def test_log_memo_logs_once_per_change() -> None:
    memo = limits.LogMemo()
    said = [memo.should_log("job", text) for text in ["boom", "boom", "boom", "other", "other", "boom"]]
    assert said == [True, False, False, True, False, True]
    memo.clear("job")
    assert memo.should_log("job", "boom") is True
    assert memo.should_log("another", "boom") is True


def test_log_memo_is_bounded() -> None:
    memo = limits.LogMemo(max_keys=3)
    for i in range(10):
        memo.should_log(f"k{i}", "x")
    assert len(memo._last) == 3
