"""benchmarks/e2e.py: the pure helpers that turn logs and watch events into the reported numbers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "e2e.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_e2e", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_first_step_is_the_earliest_step_event_of_any_rank(bench: ModuleType) -> None:
    rank0 = "\n".join(
        [
            "epoch: 1 step: 1, loss is 2.3",
            json.dumps({"event": "start", "ts": 5.0, "rank": 0}),
            json.dumps({"event": "step", "ts": 12.5, "rank": 0}),
            "{broken",
        ]
    )
    rank1 = (
        json.dumps({"event": "step", "ts": 11.0, "rank": 1}) + "\n" + json.dumps({"event": "step", "ts": 13})
    )
    assert bench.first_step_ts([rank0, rank1]) == 11.0
    assert bench.first_step_ts(["no events here", json.dumps({"event": "start", "ts": 1})]) is None


def test_status_changes_count_only_status_updates(bench: ModuleType) -> None:
    versions = [
        {"metadata": {"rv": "1"}},  # created, no status yet
        {"metadata": {"rv": "2"}, "status": {"phase": "Pending"}},
        {"metadata": {"rv": "3", "annotations": {"kopf": "x"}}, "status": {"phase": "Pending"}},
        {"metadata": {"rv": "4"}, "status": {"phase": "Running"}},
        {"metadata": {"rv": "5"}, "status": {"phase": "Running", "progress": {"step": 1}}},
    ]
    assert bench.status_changes(versions) == 3


def test_summary_is_relative_to_apply(bench: ModuleType) -> None:
    out = bench.summarize(applied=100.0, running=112.34, first_step=190.0, succeeded=220.0, writes=30)
    assert out == {
        "apply_to_all_pods_running_s": 12.3,
        "apply_to_first_step_s": 90.0,
        "apply_to_succeeded_s": 120.0,
        "status_writes": 30,
        "status_writes_per_job_minute": 15.0,
    }
    assert bench.summarize(100.0, None, None, None, 0)["status_writes_per_job_minute"] is None
