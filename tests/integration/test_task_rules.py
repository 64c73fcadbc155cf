"""The apiserver's CEL rules for spec.task and spec.from (issue 13): what evaluate/export/fine-tune jobs must
say, refused by `kubectl apply --dry-run=server` with the message naming the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from test_install import REPO, ensure_crd

pytestmark = pytest.mark.integration
TINY = yaml.safe_load((REPO / "manifests" / "examples" / "cpu-tiny.yaml").read_text())


def _job(**changes: Any) -> str:
    body = yaml.safe_load(yaml.safe_dump(TINY))
    body["metadata"]["name"] = "rules"
    for key, value in changes.items():
        if value is None:
            body["spec"].pop(key, None)
        else:
            body["spec"][key] = value
    return yaml.safe_dump(body)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": "evaluate", "replicas": 1}, "spec.from: required for spec.task evaluate and export"),
        (
            {"task": "export", "replicas": 2, "from": {"job": "x"}},
            "spec.replicas: spec.task evaluate and export run",
        ),
        ({"dataset": None}, "spec.dataset: required"),
        ({"from": {"job": "x"}, "checkpoint": {"resumeFrom": "a/b.ckpt"}}, "choose one"),
        ({"from": {"job": "x", "checkpoint": "newest"}}, "newest"),
    ],
)
def test_server_refuses(cluster, namespace, changes, message):
    ensure_crd(cluster)
    proc = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=_job(**changes), check=False
    )
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_server_accepts_an_export_without_a_dataset_and_a_fine_tune(cluster, namespace):
    ensure_crd(cluster)
    for text in (
        _job(task="export", replicas=1, dataset=None, hyperparameters=None, **{"from": {"job": "x"}}),
        _job(**{"from": {"job": "x", "checkpoint": "last"}}),
    ):
        out = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=text).stdout
        assert "(server dry run)" in out
