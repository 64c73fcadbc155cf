"""ZooTrainingJob bodies shared by the operator's unit tests."""

from __future__ import annotations

import copy
from typing import Any


def job(name: str = "demo", **spec: Any) -> dict[str, Any]:
    """A valid CPU job; keyword arguments replace top-level spec fields (None removes one)."""
    body: dict[str, Any] = {
        "apiVersion": "modelzoo.io/v1alpha1",
        "kind": "ZooTrainingJob",
        "metadata": {"name": name, "namespace": "ns1", "uid": "uid-1", "generation": 1},
        "spec": {
            "model": "resnet50_bam",
            "device": {"type": "CPU"},
            "replicas": 2,
            "dataset": {
                "volume": {"hostPath": {"path": "/data"}},
                "trainPath": "train",
                "evalPath": "val",
                "numClasses": 10,
            },
            "hyperparameters": {"epochs": 1, "batch_size": 4, "lr_max": 0.1},
        },
    }
    for key, value in spec.items():
        if value is None:
            body["spec"].pop(key, None)
        else:
            body["spec"][key] = copy.deepcopy(value)
    return body


def ascend_job(name: str = "asc", replicas: int = 4, **spec: Any) -> dict[str, Any]:
    """A valid Ascend910 rank-table job."""
    return job(name, **{"device": {"type": "Ascend910"}, "replicas": replicas, **spec})
