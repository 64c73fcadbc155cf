"""A sweep end to end: `kubectl ztj sweep` over a 2x2 grid of tiny CPU trials (1 rank, 2 epochs, at most 2 at
once) on the chart-installed operator ends with the compare table and one PNG of the four trials' curves; the
trials are ordinary labelled jobs that `kubectl ztj compare` reads again."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from e2e_helpers import E2E, tiny_job
from test_console import tool_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SWEEP = "sw"


def test_grid_sweep_ends_with_table_and_png(e2e: E2E, tmp_path: Path) -> None:
    template = tmp_path / "trial.yaml"
    template.write_text(yaml.safe_dump(tiny_job("template", "resnet50_bam", e2e.data["images"], epochs=2)))
    png = tmp_path / "sw.png"
    proc = subprocess.run(
        [
            "kubectl",
            "ztj",
            "sweep",
            "-n",
            e2e.namespace,
            "-f",
            str(template),
            "--name",
            SWEEP,
            "--grid",
            "lr_max=0.1,0.01",
            "--grid",
            "batch_size=2,4",
            "--parallel",
            "2",
            "--interval",
            "2",
            "--timeout",
            "1200",
            "-o",
            str(png),
            "--color",
            "never",
        ],
        capture_output=True,
        text=True,
        env=tool_env(e2e),
        timeout=1300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("created sw-") == 4 and "at most 2 at once" in out
    for i in range(4):
        assert f"sw-{i}" in out.split("Sweep sw:")[1]
    assert "BEST TOP1" in out and "lr_max" in out and "batch_size" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    jobs = json.loads(e2e.kubectl("get", "ztj", "-l", f"modelzoo.io/sweep={SWEEP}", "-o", "json").stdout)[
        "items"
    ]
    assert sorted(j["metadata"]["labels"]["modelzoo.io/trial"] for j in jobs) == ["0", "1", "2", "3"]
    assert {j["status"]["phase"] for j in jobs} == {"Succeeded"}
    assert all(len(j["status"]["history"]) == 2 for j in jobs)
    points = sorted(
        json.loads(j["metadata"]["annotations"]["modelzoo.io/sweep-params"])["lr_max"] for j in jobs
    )
    assert points == [0.01, 0.01, 0.1, 0.1]

    again = subprocess.run(
        ["kubectl", "ztj", "compare", SWEEP, "-n", e2e.namespace, "-o", "-", "--color", "never"],
        capture_output=True,
        text=True,
        env=tool_env(e2e),
        timeout=120,
        check=False,
    )
    assert again.returncode == 0 and again.stdout.count("Succeeded") == 4, again.stderr
