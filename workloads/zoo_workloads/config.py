"""Model default hyperparameters: the one source of truth, read by training and by the operator.

Pure Python and YAML only: the operator imports this module without MindSpore installed.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml

_CONFIG_PACKAGE = "zoo_workloads.configs"


@functools.cache
def _load(name: str) -> dict[str, Any]:
    text = resources.files(_CONFIG_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config {name}.yaml must be a mapping")
    return data


def model_names() -> list[str]:
    """Every model that has a default config, sorted."""
    files = resources.files(_CONFIG_PACKAGE).iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".yaml") and f.name != "common.yaml")


def default_hyperparameters(model: str) -> dict[str, Any]:
    """The model's defaults: common.yaml overridden by <model>.yaml. Raises KeyError for an unknown model."""
    if model not in model_names():
        raise KeyError(f"unknown model {model!r}; known: {', '.join(model_names())}")
    merged = dict(_load("common"))
    merged.update(_load(model))
    return merged
