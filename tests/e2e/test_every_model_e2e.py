"""Each of the five ModelZoo models trains and evaluates once through the chart-installed operator.

Reduced sizes (width 8, one block per stage, 32 px, 2 steps, PyNative so no graph compile) on tiny synthetic
data from `zoo-data synth`, one CPU rank each. All five jobs are applied at once (module fixture) and run
concurrently; each test then follows its own job to the result in status.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from e2e_helpers import E2E, tiny_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODELS = ["glore_res50", "resnet50_bam", "genet_res50", "multigrain", "resnet3d"]
# THOR has no CPU kernels (multigrain trains with momentum here); repeated augmentation needs batches of several
# copies; short clips keep the 3D model quick.
EXTRA: dict[str, dict[str, Any]] = {
    "multigrain": {"optimizer": "momentum", "batch_size": 6, "repeated_augment": 3},
    "resnet3d": {"clip_length": 8, "batch_size": 2},
}


def job_name(model: str) -> str:
    """The job of one model (names allow no underscores)."""
    return "m-" + model.replace("_", "-")


@pytest.fixture(scope="module")
def model_jobs(e2e: E2E) -> dict[str, str]:
    """Apply one tiny job per model, all at once; model -> job name."""
    jobs = {}
    for model in MODELS:
        if model == "resnet3d":
            body = tiny_job(
                job_name(model), model, e2e.data["video"], train="frames", evaluate="frames", **EXTRA[model]
            )
        else:
            body = tiny_job(job_name(model), model, e2e.data["images"], **EXTRA.get(model, {}))
        e2e.apply(body)
        jobs[model] = job_name(model)
    return jobs


@pytest.mark.parametrize("model", MODELS)
def test_model_trains_through_the_operator(e2e: E2E, model_jobs: dict[str, str], model: str) -> None:
    job = model_jobs[model]
    status = e2e.wait_phase(job, {"Succeeded", "Failed"}, timeout=720)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    result = status["result"]
    assert isinstance(result["top1"], float) and 0.0 <= result["top1"] <= 1.0
    assert result["metrics"]["top_1_accuracy"] == pytest.approx(result["top1"], abs=1e-4)
    assert result["checkpoint"].endswith(".ckpt")
    if model == "resnet3d":
        assert "clip_accuracy" in result["metrics"]  # video: per-clip and per-video accuracy
    assert status["progress"]["epoch"] == status["progress"]["epochs"] == 1
    assert status["progress"]["step"] == 2 and status["progress"]["loss"] > 0

    row = e2e.kubectl("get", "ztj", job, "--no-headers").stdout.split()
    assert row[1:7] == [model, "1", "Succeeded", "Done", "1/1", "2/2"]
    log = e2e.logs(f"{job}-worker-0")
    assert "epoch: 1 step: 2, loss is" in log and "result: {'top_1_accuracy'" in log
    start = next(json.loads(ln) for ln in log.splitlines() if ln.startswith('{"event": "start"'))
    assert (start["model"], start["rank"], start["rank_size"]) == (model, 0, 1)
