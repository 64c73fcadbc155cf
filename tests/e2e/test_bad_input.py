"""Bad input never reaches a pod: the apiserver refuses what the CRD schema can check (with a message naming the
field), and the chart-installed operator fails what only the workload's own checks can judge (hyperparameters)
with phase Failed, reason InvalidSpec and a message naming the field, creating no pod, Service or ConfigMap.
A dataset that is missing inside its volume is only found by the rank itself: exit code 66 fails the job at once,
without a restart.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from e2e_helpers import E2E, tiny_job

pytestmark = [pytest.mark.e2e]


def bad_job(name: str, **spec: Any) -> dict[str, Any]:
    """A small valid CPU job with some spec fields replaced (None deletes a field)."""
    body = {
        "apiVersion": "modelzoo.io/v1alpha1",
        "kind": "ZooTrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "resnet50_bam",
            "device": {"type": "CPU"},
            "replicas": 2,
            "dataset": {"volume": {"emptyDir": {}}, "trainPath": "train", "numClasses": 3},
        },
    }
    for key, value in spec.items():
        if value is None:
            del body["spec"][key]
        else:
            body["spec"][key] = copy.deepcopy(value)
    return body


REFUSED = {
    "unknown-model": ({"model": "resnet9000"}, ["spec.model", "resnet9000", "resnet50_bam"]),
    "per-node": (
        {"device": {"type": "Ascend910", "perNode": 8}, "replicas": 12},
        ["spec.replicas must be a multiple of spec.device.perNode"],
    ),
    "negative-replicas": ({"replicas": -2}, ["spec.replicas", "greater than or equal to 1"]),
    "negative-backoff": (
        {"runPolicy": {"backoffLimit": -1}},
        ["spec.runPolicy.backoffLimit", "greater than or equal to 0"],
    ),
    "negative-classes": (
        {"dataset": {"volume": {"emptyDir": {}}, "trainPath": "train", "numClasses": -3}},
        ["spec.dataset.numClasses"],
    ),
    "no-dataset": ({"dataset": None}, ["spec.dataset", "required"]),
    # Issue 11: a rank table with a device IP that is no IPv4 address would be "completed" and useless.
    "device-ip-banana": (
        {
            "device": {"type": "Ascend910"},
            "replicas": 1,
            "rankTable": {
                "staticDevices": [
                    {"podIndex": 0, "serverId": "10.0.0.1", "deviceId": "0", "deviceIp": "banana"}
                ]
            },
        },
        ["spec.rankTable.staticDevices[0].deviceIp", "must be an IPv4 address"],
    ),
    "device-ip-999": (
        {
            "device": {"type": "Ascend910"},
            "replicas": 1,
            "rankTable": {
                "staticDevices": [
                    {"podIndex": 0, "serverId": "10.0.0.1", "deviceId": "0", "deviceIp": "999.1.1.1"}
                ]
            },
        },
        ["spec.rankTable.staticDevices[0].deviceIp", "must be an IPv4 address"],
    ),
    "huge-image": ({"image": "x" * 600}, ["spec.image", "Too long"]),
    "huge-pretrained": (
        {"hyperparameters": {"pretrained": "x" * 900_000}},
        ["spec.hyperparameters.pretrained", "Too long"],
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_kubectl_apply_refuses_naming_the_field(e2e: E2E, case: str) -> None:
    spec, words = REFUSED[case]
    proc = e2e.apply(bad_job(f"bad-{case}", **spec), check=False)
    assert proc.returncode != 0, proc.stdout
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert e2e.get("ztj", f"bad-{case}") is None
    assert e2e.owned(f"bad-{case}") == {"Pod": [], "Service": [], "ConfigMap": []}


INVALID = {
    "hp-type": ({"epochs": "many"}, "spec.hyperparameters.epochs"),
    "hp-unknown": ({"learning_rate": 0.1}, "spec.hyperparameters.learning_rate: unknown hyperparameter"),
    "hp-negative": (
        {"epochs": -1},
        "spec.hyperparameters.epochs: -1 is out of range: must be an integer >= 1",
    ),
    "hp-layers": (
        {"layers": "[1,1]"},
        "spec.hyperparameters.layers: '[1,1]' is invalid: must be a list of 4 integers",
    ),
    # Issue 11: these trained (lr_max) or failed inside the workload with a retryable exit 1.
    "hp-lr-max": ({"lr_max": -1}, "spec.hyperparameters.lr_max: -1 is out of range: must be a number > 0"),
    "hp-smoothing": ({"label_smoothing": 5}, "spec.hyperparameters.label_smoothing: 5 is out of range"),
    "hp-momentum": ({"momentum": -3}, "spec.hyperparameters.momentum: -3 is out of range"),
    "hp-workers": (
        {"num_parallel_workers": 0},
        "spec.hyperparameters.num_parallel_workers: 0 is out of range",
    ),
    # A 900 KB value: refused naming the field, quoted in at most ~200 characters, and the status still fits.
    "hp-huge": (
        {"learning_rate": "x" * 900_000},
        "spec.hyperparameters.learning_rate: unknown hyperparameter",
    ),
}


@pytest.fixture(scope="module")
def invalid_jobs(e2e: E2E) -> dict[str, dict[str, Any]]:
    """All InvalidSpec jobs applied at once (the apiserver accepts them); case -> final status."""
    for case, (hyper, _) in INVALID.items():
        # create, not apply: apply would copy a 900 KB spec into an annotation (limit 256 KiB) and be refused.
        proc = e2e.kubectl(
            "create", "-f", "-", input=json.dumps(bad_job(f"bad-{case}", hyperparameters=hyper))
        )
        assert "created" in proc.stdout
    return {
        case: e2e.wait_phase(f"bad-{case}", {"Failed", "Succeeded", "Running"}, timeout=120)
        for case in INVALID
    }


@pytest.mark.parametrize("case", sorted(INVALID))
def test_operator_fails_invalid_hyperparameters_without_creating_anything(
    e2e: E2E, invalid_jobs: dict[str, dict[str, Any]], case: str
) -> None:
    status, field = invalid_jobs[case], INVALID[case][1]
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidSpec"), status
    assert field in status["message"], status["message"]
    assert "\n" not in status["message"] and len(status["message"]) < 2000
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and field in failed["message"]
    warnings = [e for e in e2e.events(f"bad-{case}") if e["type"] == "Warning"]
    assert warnings and warnings[0]["reason"] == "InvalidSpec" and field in warnings[0]["message"]
    time.sleep(5)  # two more reconcile ticks: still nothing
    assert e2e.owned(f"bad-{case}") == {"Pod": [], "Service": [], "ConfigMap": []}


@pytest.mark.slow
def test_missing_dataset_fails_at_once_without_restart(e2e: E2E, tmp_path: Any) -> None:
    """The volume exists but holds no training set: the rank exits 66 (DatasetMissing), a permanent error."""
    body = tiny_job("no-data", "resnet50_bam", tmp_path, train="imagenet/train", evaluate=None)
    body["spec"]["runPolicy"]["backoffLimit"] = 3
    e2e.apply(body)
    status = e2e.wait_phase("no-data", {"Failed", "Succeeded"}, timeout=300)
    assert status["phase"] == "Failed", json.dumps(status, indent=1)
    assert status.get("restarts", 0) == 0, "a permanent error must not restart the gang"
    assert "exit code 66" in status["message"] and "DatasetMissing" in status["message"], status["message"]
    assert "/zoo/data/imagenet/train" in status["message"]
