"""Fine-tuning from a checkpoint in the MindSpore ModelZoo's layout (issue 22), through a ZooTrainingJob.

The checkpoint is written as research/cv/GENet_Res50's train.py would name it (conv1/bn1, conv1.conv/
conv1.batchnorm inside each block, down_layer, downop, mlpLayer, end_point; the names checked against the
reference manifest in tests/unit/test_modelzoo_names.py), with optimizer state next to it and a 10-class
classifier, as an ImageNet-style checkpoint for a 3-class job would have. The job names it in `pretrained`, loads
every parameter but the classifier (stated in its log), trains and succeeds; a checkpoint of another model fails
the job with InvalidSpec-like permanence (exit 64) and a message naming what did not match.
"""

from __future__ import annotations

import json

import mindspore as ms
import pytest
from e2e_helpers import E2E, tiny_job

from zoo_workloads.models import create_model, modelzoo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
MODEL, JOB, BAD = "genet_res50", "mz-tune", "mz-bad"


def _write_reference_checkpoint(path, classes: int) -> int:
    net = create_model(MODEL, classes, image_size=32, width=8, layers=[1, 1, 1, 1])
    params = {p.name: p for p in net.get_parameters()}
    data = modelzoo.to_reference(MODEL, params, params)
    entries = [{"name": k, "data": v} for k, v in data.items()]
    entries.append({"name": "moments.conv1.weight", "data": data["conv1.weight"]})
    ms.save_checkpoint(entries, str(path))
    assert "end_point.weight" in data and "stem.0.weight" not in data
    return len(params)


def test_fine_tune_from_a_modelzoo_layout_checkpoint(e2e: E2E, tmp_path_factory) -> None:
    store = tmp_path_factory.mktemp("modelzoo-ckpt")
    store.chmod(0o777)
    (store / "pretrained").mkdir()
    total = _write_reference_checkpoint(store / "pretrained" / "genet_modelzoo.ckpt", classes=10)
    volume = {"hostPath": {"path": str(store), "type": "Directory"}}
    job = tiny_job(JOB, MODEL, e2e.data["images"], pretrained="pretrained/genet_modelzoo.ckpt")
    job["spec"]["checkpoint"] = {"volume": volume}
    e2e.apply(job)
    status = e2e.wait_phase(JOB, {"Succeeded", "Failed"}, timeout=720)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    log = e2e.logs(f"{JOB}-worker-0")
    assert f"loaded {total - 2} of {total} parameters from" in log and "classifier (fc) starts fresh" in log

    # The same file for another model: the job fails permanently and says what did not fit.
    bad = tiny_job(BAD, "resnet50_bam", e2e.data["images"], pretrained="pretrained/genet_modelzoo.ckpt")
    bad["spec"]["checkpoint"] = {"volume": volume}
    e2e.apply(bad)
    status = e2e.wait_phase(BAD, {"Succeeded", "Failed"}, timeout=720)
    assert status["phase"] == "Failed"
    log = e2e.logs(f"{BAD}-worker-0")
    assert "does not fit model resnet50_bam" in log and "missing " in log
