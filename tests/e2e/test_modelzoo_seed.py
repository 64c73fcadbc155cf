"""A ModelZoo seed's own train.py through a ZooTrainingJob (hack/modelzoo/run_seed.py's job), on 2 CPU ranks.

Needs a checkout of https://github.com/mindspore-ai/models (not ours to vendor, and CI cannot reach it): set
ZOO_MODELZOO to its root, else the test is skipped. It records what happens (the README quotes it): the job
must end, Succeeded or Failed with the seed's own error in the rank's log and status, never hang.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from e2e_helpers import E2E, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
MODELZOO = os.environ.get("ZOO_MODELZOO", "")
sys.path.insert(0, str(REPO / "hack" / "modelzoo"))


@pytest.mark.skipif(
    not MODELZOO,
    reason=(
        "CI cannot reach the ModelZoo: set ZOO_MODELZOO to a mindspore-ai/models checkout. The README records this"
        " test's last run; tests/e2e/test_custom_command_e2e.py covers the same path (spec.command on 2 CPU ranks,"
        " EPOCH/LOSS through the reporting contract) with our own script"
    ),
)
def test_seed_train_py_runs_through_a_job(e2e: E2E) -> None:
    import run_seed

    seed = "research/cv/resnet50_bam"
    files = run_seed.sources(Path(MODELZOO) / seed)
    name = run_seed.SEEDS[seed]["name"]
    e2e.apply(run_seed.config_map(name, files))
    body = run_seed.job(
        seed,
        files,
        replicas=2,
        device="CPU",
        data=str(e2e.data["digits"] / "train"),
        image="zoo-operator/workload-cpu:latest",
    )
    e2e.apply(body)
    status = e2e.wait_phase(name, {"Succeeded", "Failed"}, timeout=600)
    log = e2e.logs(f"{name}-worker-0")
    print(f"--- {name}: {status['phase']} {status.get('reason')}: {status.get('message')}\n{log[-3000:]}")
    print(json.dumps(status.get("progress") or {}, indent=1))
    print(e2e.kubectl("get", "ztj", name, "-o", "wide").stdout)
    assert status["phase"] in ("Succeeded", "Failed")
    if status["phase"] == "Failed":
        assert "exit code" in status["message"] and log.strip(), status
