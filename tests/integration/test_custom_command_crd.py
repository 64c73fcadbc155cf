"""spec.command on a real apiserver (issue 26): a command job is stored, and every bad combination is refused by
the CRD's CEL rules with the message zoo_operator.spec gives (kubectl apply says what `zoo-operator render` says)."""

from __future__ import annotations

from typing import Any

import pytest
from operator_fixtures import apply, cpu_job, get

pytestmark = pytest.mark.integration


def custom(name: str, **spec: Any) -> dict[str, Any]:
    body = cpu_job(name, command=["python", "/scripts/train.py"], args=["--epochs", "2"])
    for key in ("model", "hyperparameters"):
        body["spec"].pop(key)
    body["spec"].update(spec)
    return body


def drop(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        body["spec"].pop(key)
    return body


def test_command_job_is_stored_with_its_command(ztj_crd: Any, namespace: str) -> None:
    apply(ztj_crd, namespace, drop(custom("mine"), "dataset"))
    stored = get(ztj_crd, namespace, "ztj", "mine")
    assert stored is not None and stored["spec"]["command"] == ["python", "/scripts/train.py"]
    wide = ztj_crd.kubectl("get", "ztj", "mine", "-n", namespace, "-o", "wide").stdout.split()
    assert wide[-1] == "python"  # the COMMAND column


BAD = [
    (custom("c1", model="resnet50_bam"), "spec.model and spec.command are mutually exclusive"),
    (drop(custom("c2"), "image"), "spec.image: required with spec.command"),
    (custom("c3", hyperparameters={"epochs": 2}), "spec.hyperparameters: only for a built-in spec.model"),
    (
        drop(cpu_job("c4", args=["--x"]), "hyperparameters"),
        "spec.args and spec.workingDir: only with spec.command",
    ),
    (drop(cpu_job("c5"), "model"), "spec.model: required (a built-in model), or spec.command"),
    (
        custom("c6", task="evaluate", replicas=1, **{"from": {"job": "x"}}),
        "spec.task and spec.from: only for",
    ),
    (custom("c7", command=[]), "spec.command"),
    (custom("c8", command=["python", ""]), "spec.command[1]"),
    (custom("c9", workingDir="relative"), "spec.workingDir"),
]


@pytest.mark.parametrize(("body", "message"), BAD, ids=[b["metadata"]["name"] for b, _ in BAD])
def test_bad_commands_are_refused_naming_the_field(
    ztj_crd: Any, namespace: str, body: dict[str, Any], message: str
) -> None:
    out = apply(ztj_crd, namespace, body, check=False)
    assert out.returncode != 0, f"{body['metadata']['name']} was accepted"
    assert message in out.stderr, out.stderr
    assert get(ztj_crd, namespace, "ztj", body["metadata"]["name"]) is None
