"""Your own command (issue 26) through the chart-installed operator: the example script of
manifests/examples/custom-script trains on 2 CPU ranks from a ConfigMap and reports EPOCH/LOSS/TOP-1 through
zoo_workloads.report; a command that reports nothing succeeds on exit 0; a nonzero exit fails within backoffLimit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_helpers import E2E, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EXAMPLE = REPO / "manifests" / "examples" / "custom-script"


def example_job(name: str, data: Path, configmap: str) -> dict[str, Any]:
    """manifests/examples/custom-script/job.yaml, renamed, reading the digits from `data`."""
    body = yaml.safe_load((EXAMPLE / "job.yaml").read_text())
    body["metadata"]["name"] = name
    body["spec"]["dataset"]["volume"]["hostPath"]["path"] = str(data)
    body["spec"]["podTemplate"]["volumes"][0]["configMap"]["name"] = configmap
    return dict(body)


def plain_job(name: str, code: str) -> dict[str, Any]:
    """One CPU rank running `python -c code`: no dataset, no reporting, one process (no scheduler pod)."""
    return {
        "apiVersion": "modelzoo.io/v1alpha1",
        "kind": "ZooTrainingJob",
        "metadata": {"name": name},
        "spec": {
            "image": "zoo-operator/workload-cpu:latest",
            "command": ["python", "-c", code],
            "device": {"type": "CPU"},
            "replicas": 1,
            "runPolicy": {"backoffLimit": 0},
        },
    }


def columns(e2e: E2E, job: str, *flags: str) -> dict[str, str]:
    """`kubectl get ztj JOB` as header -> value, cut at the header's column starts (a column may be empty)."""
    head, row = e2e.kubectl("get", "ztj", job, *flags).stdout.splitlines()[:2]
    starts = [m.start() for m in re.finditer(r"\S+", head)]
    names = head.split()
    return {name: row[a:b].strip() for name, a, b in zip(names, starts, [*starts[1:], None], strict=True)}


def test_own_script_trains_on_two_ranks_and_reports(e2e: E2E) -> None:
    e2e.kubectl("create", "configmap", "custom-script-e2e", f"--from-file={EXAMPLE / 'train.py'}")
    e2e.apply(example_job("custom-script", e2e.data["digits"], "custom-script-e2e"))
    e2e.apply(plain_job("custom-silent", "print('no reporting at all')"))
    e2e.apply(plain_job("custom-exit3", "raise SystemExit(3)"))

    status = e2e.wait_phase("custom-script", {"Succeeded", "Failed"}, timeout=300)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[-4000:]
    progress = status["progress"]
    assert progress["epoch"] == progress["epochs"] == 2 and progress["loss"] > 0
    assert [h["epoch"] for h in status["history"]] == [1, 2] and "top1" in status["history"][-1]
    assert 0.0 <= status["result"]["top1"] <= 1.0 and status["result"]["checkpoint"].endswith("mlp.ckpt")
    shown = columns(e2e, "custom-script", "-o", "wide")
    assert shown["MODEL"] == "custom:train.py"  # status.model (spec.display_model)
    assert shown["PHASE"] == "Succeeded" and shown["EPOCH"] == "2/2" and float(shown["LOSS"]) > 0
    assert float(shown["TOP-1"]) == status["result"]["top1"] and shown["COMMAND"] == "python"
    log = e2e.logs("custom-script-worker-0")
    assert "zoo-launch: MS_SCHED_HOST=" in log and "epoch 2: accuracy" in log  # through zoo-launch

    silent = e2e.wait_phase("custom-silent", {"Succeeded", "Failed"}, timeout=120)
    assert silent["phase"] == "Succeeded", json.dumps(silent, indent=1)[-2000:]
    assert "result" not in silent
    failed = e2e.wait_phase("custom-exit3", {"Succeeded", "Failed"}, timeout=120)
    assert failed["phase"] == "Failed" and "exit code 3" in failed["message"], failed
