"""benchmarks/models.py runs a real training step per model and reports plain numbers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "models.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_models", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_reports_a_rate_per_model(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    argv = [
        "--models",
        "resnet3d",
        "glore_res50",
        "--image-size",
        "32",
        "--clip-length",
        "4",
        "--batch",
        "3",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--width",
        "8",
        "--layers",
        "1",
        "1",
        "1",
        "1",
        "--mode",
        "pynative",
        "--json",
    ]
    assert bench.main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["model"] for r in rows] == ["resnet3d", "glore_res50"]
    assert rows[0]["input"] == [3, 3, 4, 32, 32]
    for row in rows:
        assert row["images_per_second"] > 0 and row["step_ms"] > 0 and row["loss"] > 0


def test_benchmark_rejects_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert _load().main(["--models", "resnet51"]) == 64
    assert "resnet51" in capsys.readouterr().err
