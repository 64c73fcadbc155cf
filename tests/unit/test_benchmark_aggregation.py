"""benchmarks/aggregation.py: its fake ranks write what the operator reads (the workload's own lines, exit and
termination message), its fake kubelet stores lines as the local cluster's log server reads them, and the
counters it reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from zoo_operator import logparse, memory, podview

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "hack" / "cluster")]
spec = importlib.util.spec_from_file_location("aggregation", REPO / "benchmarks" / "aggregation.py")
assert spec and spec.loader
agg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(agg)


def test_a_fake_rank_writes_the_lines_the_operator_folds_into_progress() -> None:
    mem = memory.JobMemory(uid="u")
    lines = agg.start_lines(0, 8, 10, 3)
    for step in range(1, 21):
        lines += agg.rank_lines(0, step, 10, 3, 0.0)
    assert memory.feed_lines(mem, "p-0", "pu", lines, 50)
    progress = mem.logs["p-0"].progress
    assert (progress["epoch"], progress["epochs"], progress["step"]) == (2, 3, 10), progress
    events = [e["event"] for e in logparse.parse_lines("\n".join(lines))]
    assert events.count("step") == 20 and events.count("epoch") == 2 and events.count("eval") == 2
    done = logparse.parse_line(agg.done_line(0, 3, 0.9))
    assert done is not None and done["event"] == "done" and done["metrics"]["top_1_accuracy"] == 0.9


def test_a_fake_rank_exits_as_the_workload_does() -> None:
    running = podview.view({"metadata": {"name": "p"}, **agg.running_status(0, 0, 0.0)})
    assert running.running and not running.terminated and running.phase == "Running"
    message = agg.termination_message(3, 0.9)
    ended = podview.view({"metadata": {"name": "p"}, **agg.exited_status(0, message, 0.0)})
    assert ended.terminated and not ended.failed and ended.exit_code == 0 and ended.phase == "Succeeded"
    parsed = logparse.parse_termination(ended.termination_message)
    assert parsed is not None and parsed["status"] == "succeeded", parsed
    failed = podview.view({"metadata": {"name": "p"}, **agg.exited_status(75, "", 0.0)})
    assert failed.failed and failed.phase == "Failed"


def test_stored_lines_read_back_through_the_local_clusters_log_server(tmp_path: Path) -> None:
    from zoocluster import logserver

    path = tmp_path / "log"
    path.write_bytes(agg.stored_line('{"event": "step"}', 1.5) + agg.stored_line("human", 2.25))
    container = agg.Container(path)
    container.ended = True
    sent = list(logserver.stream(path, container, {"follow": "true", "tailLines": "1"}))
    assert sent == [b"human\n"]
    assert agg.stored_line("x", 1.5).startswith(b"1970-01-01T00:00:01.500000Z stdout ")


def test_request_counters_per_job_and_second() -> None:
    before, after = {"patch": 3, "log": 1}, {"patch": 13, "log": 1, "follow": 2}
    assert agg.diff(after, before) == {"patch": 10, "follow": 2}
    assert agg.per_job({"patch": 10, "follow": 0}, 2, 5.0) == {"patch": 1.0}
    assert agg.verbs(agg.per_job({"log": 8}, 1)) == "log 8"
