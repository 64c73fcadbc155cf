"""After training (issue 13): a tiny job trains with its checkpoints on a hostPath; then, through the operator
and only by naming that job, its best checkpoint is evaluated (same metrics as the job reported), exported to
MINDIR (loaded back here and run on one batch) and fine-tuned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import E2E, tiny_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TRAIN, EVAL, EXPORT, TUNE = "aft-train", "aft-eval", "aft-export", "aft-tune"


def _succeeded(e2e: E2E, job: str) -> dict[str, Any]:
    status = e2e.wait_phase(job, {"Succeeded", "Failed"}, timeout=720)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    return status


def _from(e2e: E2E, name: str, task: str, **spec: Any) -> dict[str, Any]:
    body = tiny_job(name, "resnet50_bam", e2e.data["images"])
    body["spec"].update({"task": task, "from": {"job": TRAIN, "checkpoint": "best"}, **spec})
    body["spec"].pop("hyperparameters")  # everything comes from the trained job's saved config
    return body


def test_evaluate_export_and_fine_tune_a_finished_job_by_name(e2e: E2E, tmp_path_factory) -> None:
    store = tmp_path_factory.mktemp("checkpoints")
    volume = {"hostPath": {"path": str(store), "type": "DirectoryOrCreate"}}
    train = tiny_job(TRAIN, "resnet50_bam", e2e.data["images"], epochs=3, lr_max=0.05)
    train["spec"]["checkpoint"] = {"volume": volume}
    e2e.apply(train)
    status = _succeeded(e2e, TRAIN)
    result = status["result"]
    assert result["checkpointVolume"] == f"hostPath:{store}"
    # The job's own directory <namespace>/<name>-<uid[:8]> on the volume (issue 15), relative to it (issue 13).
    assert re.fullmatch(
        rf"{re.escape(e2e.namespace)}/{TRAIN}-[0-9a-f]{{8}}/resnet50_bam-best\.ckpt", result["checkpoint"]
    )
    assert (store / result["checkpoint"]).is_file()
    best = result["best"]
    assert result["metrics"] == best["metrics"] and 1 <= best["epoch"] <= 3
    assert result["last"]["epoch"] == 3 and (store / result["last"]["checkpoint"]).is_file()
    assert not any(x["type"] == "CheckpointsEphemeral" for x in status["conditions"])

    e2e.apply(_from(e2e, EVAL, "evaluate", replicas=1))
    e2e.apply(_from(e2e, EXPORT, "export", replicas=1))
    evaluated = _succeeded(e2e, EVAL)
    assert evaluated["source"]["job"] == TRAIN and evaluated["source"]["epoch"] == best["epoch"]
    assert evaluated["result"]["epoch"] == best["epoch"]
    for key in ("top_1_accuracy", "top_5_accuracy"):  # the checkpoint scores what the training job reported
        assert evaluated["result"]["metrics"][key] == pytest.approx(best["metrics"][key], abs=1e-6)
    assert [p["metadata"]["name"] for p in e2e.pods(EVAL)] == [f"{EVAL}-worker-0"]

    exported = _succeeded(e2e, EXPORT)["result"]
    artifact = store / exported["artifact"]
    assert (
        exported["artifactVolume"] == f"hostPath:{store}"
        and artifact.suffix == ".mindir"
        and artifact.is_file()
    )
    import mindspore as ms
    import numpy as np

    graph = ms.nn.GraphCell(ms.load(str(artifact)))
    logits = graph(ms.Tensor(np.zeros((1, 3, 32, 32), np.float32))).asnumpy()
    assert logits.shape == (1, 3) and np.isfinite(logits).all()

    tune = tiny_job(TUNE, "resnet50_bam", e2e.data["images"], epochs=1, lr_max=0.01)
    tune["spec"]["hyperparameters"] = {"epochs": 1, "lr_max": 0.01}  # the rest from aft-train's config
    tune["spec"]["from"] = {"job": TRAIN}
    tune["spec"]["checkpoint"] = {"volume": volume}
    e2e.apply(tune)
    tuned = _succeeded(e2e, TUNE)
    assert tuned["source"]["path"] == result["checkpoint"]
    log = e2e.logs(f"{TUNE}-worker-0")
    assert f"from /zoo/from/{result['checkpoint']}" in log and "loaded 0 of" not in log
    saved = ((Path(store) / tuned["result"]["checkpoint"]).parent / "config.yaml").read_text()
    assert "width: 8" in saved and "epochs: 1" in saved  # architecture from the source, epochs from the job
