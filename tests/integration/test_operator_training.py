"""A real (tiny) data-parallel CPU training job run by the operator: progress and accuracy come back in status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from operator_fixtures import OperatorProcess, apply, cpu_job, items, tiny_images, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TINY = {
    "width": 8,
    "layers": [1, 1, 1, 1],
    "image_size": 32,
    "epochs": 1,
    "steps_per_epoch": 3,
    "batch_size": 2,
}


def test_dynamic_cpu_job_trains_and_reports(
    ztj_crd: Any, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    data = tiny_images(tmp_path)
    job = cpu_job(
        "tiny",
        replicas=2,
        hyperparameters=TINY,
        dataset={
            "volume": {"hostPath": {"path": str(data)}},
            "trainPath": "train",
            "evalPath": "val",
            "numClasses": 3,
        },
        runPolicy={"backoffLimit": 0},
    )
    apply(ztj_crd, namespace, job)
    status = wait_phase(ztj_crd, namespace, "tiny", {"Succeeded", "Failed"}, timeout=480)
    print("final status:", json.dumps(status, indent=1))
    assert status["phase"] == "Succeeded", status.get("message")
    assert 0.0 <= status["result"]["top1"] <= 1.0 and "top_1_accuracy" in status["result"]["metrics"]
    assert status["progress"]["epoch"] == 1 and status["progress"]["epochs"] == 1
    assert status["ranks"] == {"total": 2, "pending": 0, "active": 0, "succeeded": 2, "failed": 0}
    assert {s["pod"]: s.get("exitCode") for s in status["rankSummaries"] if s["rank"] >= 0} == {
        "tiny-worker-0": 0,
        "tiny-worker-1": 0,
    }
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert succeeded["status"] == "True"
    # cleanPodPolicy Running (default): finished pods stay for their logs.
    pods = items(ztj_crd, namespace, "pods", "modelzoo.io/job-name=tiny,modelzoo.io/role=worker")
    assert sorted(p["status"]["phase"] for p in pods) == ["Succeeded", "Succeeded"]
    row = ztj_crd.kubectl("get", "ztj", "tiny", "-n", namespace, "--no-headers").stdout.split()
    assert row[1:4] == ["resnet50_bam", "2", "Succeeded"] and row[4:6] == ["Done", "1/1"]
