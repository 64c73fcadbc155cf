"""Every container the operator renders has a read-only root file system, and every path it writes is a volume
(checkov CKV_K8S_22; issue 24). The writable paths are written once, in zoo_workloads.contract."""

from __future__ import annotations

import dataclasses
import posixpath
from pathlib import Path

import pytest
from operator_jobs import ascend_job, job

from zoo_operator import render, results, spec
from zoo_operator.settings import Settings
from zoo_workloads import contract

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def _bodies() -> list[dict]:
    return [
        job(),
        job(device={"type": "GPU"}),
        ascend_job(launch="dynamic"),
        ascend_job(device={"type": "Ascend910", "chip": "910B", "perNode": 2}),
        job(task="export", replicas=1, **{"from": {"job": "src"}}),
        job(
            model=None,
            hyperparameters=None,
            image="mine:1",
            command=["python", "train.py"],
            workingDir="/app",
        ),
    ]


@pytest.mark.parametrize("body", _bodies(), ids=lambda b: f"{b['spec']['device']['type']}")
def test_every_container_is_read_only_and_writes_only_into_its_volumes(body: dict) -> None:
    js = spec.parse(body, Settings())
    if js.from_job:
        js = dataclasses.replace(js, source=results.assumed_source(js))
    pods = [o for o in render.all_objects(js) if o["kind"] == "Pod"]
    assert pods
    for pod in pods:
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            writable = {
                m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"] if not m.get("readOnly")
            }
            for name, path in contract.SCRATCH_VOLUMES:
                assert writable[path] == {"name": name, "emptyDir": {}}
            env = {e["name"]: e.get("value") for e in container["env"]}
            for name, value in contract.SCRATCH_ENV:
                assert env[name] == value
                assert any(value == p or value.startswith(p.rstrip("/") + "/") for p in writable), (
                    name,
                    value,
                )
            # The checkpoint volume stays writable: the run directories live there.
            assert render.c.CHECKPOINT_DIR in writable or js.task == "export"


def test_the_docs_name_every_writable_path_and_variable() -> None:
    text = DOCS.read_text()
    for name, path in contract.SCRATCH_VOLUMES:
        assert f"`{path}`" in text and f"`{name}`" in text, (name, path)
    for name, value in contract.SCRATCH_ENV:
        assert f"`{name}={value}`" in text, name
    assert all(posixpath.isabs(p) for _, p in contract.SCRATCH_VOLUMES)
