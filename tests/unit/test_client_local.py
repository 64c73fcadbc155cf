"""Local mode for real: a tiny one-rank job through `run_local` (zoo-launch -> zoo-train on this machine) trains,
writes its checkpoint under the local output folder and reports success; a bad job fails before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from operator_jobs import job

from zoo_operator.client import InvalidSpec, run_local
from zoo_workloads.data import synth

TINY = {
    "width": 8,
    "layers": [1, 1, 1, 1],
    "image_size": 32,
    "epochs": 1,
    "steps_per_epoch": 2,
    "batch_size": 4,
    "mode": "pynative",
}


@pytest.mark.slow
def test_one_rank_local_run_trains(tmp_path: Path) -> None:
    train = synth.write_synthetic("imagefolder", tmp_path / "data", classes=3, per_class=8, size=32)
    body = job(
        "local",
        replicas=1,
        hyperparameters=TINY,
        dataset={
            "volume": {"emptyDir": {}},
            "trainPath": str(train.relative_to(tmp_path / "data")),
            "numClasses": 3,
        },
    )
    run = run_local(body, tmp_path / "data", tmp_path / "out", timeout=600, echo=False)
    log = run.logs["rank-0"].read_text()
    assert run.succeeded, log[-3000:]
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    assert any(p.suffix == ".ckpt" for p in (tmp_path / "out").rglob("*"))
    term = next((tmp_path / "out").glob("termination-*.log"))
    assert json.loads(term.read_text())["status"] == "succeeded"


def test_local_run_refuses_a_bad_job_before_starting(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.hyperparameters\.nope"):
        run_local(job(hyperparameters={"nope": 1}), tmp_path, tmp_path / "out")
    assert not (tmp_path / "out" / "rank-0.log").exists()


@pytest.mark.slow
def test_two_rank_local_run_uses_the_dynamic_cluster(tmp_path: Path) -> None:
    train = synth.write_synthetic("imagefolder", tmp_path / "data", classes=3, per_class=8, size=32)
    body = job(
        "local2",
        replicas=2,
        hyperparameters={**TINY, "batch_size": 2, "mode": "graph"},
        dataset={
            "volume": {"emptyDir": {}},
            "trainPath": str(train.relative_to(tmp_path / "data")),
            "numClasses": 3,
        },
    )
    run = run_local(body, tmp_path / "data", tmp_path / "out", timeout=900, echo=False)
    assert set(run.exit_codes) == {"scheduler", "rank-0", "rank-1"}
    assert run.succeeded, {k: p.read_text()[-1500:] for k, p in run.logs.items()}
    for rank in (0, 1):
        events = [
            json.loads(line)
            for line in run.logs[f"rank-{rank}"].read_text().splitlines()
            if line.startswith("{")
        ]
        assert events[0]["event"] == "start" and events[0]["rank_size"] == 2 and events[0]["rank"] == rank
