"""Model default hyperparameters: the one source of truth, read by training and by the operator.

Pure Python and YAML only: the operator imports this module without MindSpore installed.
Resolution order for a run: common.yaml < <model>.yaml < --config FILE < --set key=value.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from zoo_workloads.errors import ConfigError

_CONFIG_PACKAGE = "zoo_workloads.configs"

# Values that must be one of a fixed set; checked after merging so a typo fails before any work starts.
CHOICES: dict[str, tuple[str, ...]] = {
    "lr_mode": ("linear", "poly", "cosine", "steps"),
    "optimizer": ("momentum", "nesterov", "thor"),
    "amp_level": ("auto", "O0", "O1", "O2", "O3"),
    "mode": ("graph", "pynative"),
}
POSITIVE_INTS = ("epochs", "batch_size", "image_size", "width", "repeated_augment")
NON_NEGATIVE_INTS = ("steps_per_epoch", "warmup_epochs", "save_checkpoint_epochs", "keep_checkpoint_max",
                     "eval_interval", "eval_batch_size", "cosine_epochs")


@functools.cache
def _load(name: str) -> dict[str, Any]:
    text = resources.files(_CONFIG_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config {name}.yaml must be a mapping")  # noqa: TRY004 (bad file content, not a bad argument)
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


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one `key=value` override; the value is a YAML scalar (`0.1`, `true`, `null`, `[1, 1, 1, 1]`)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {' '.join(str(err).split())}") from err
    return key, value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a --config YAML file: a flat mapping of hyperparameters."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"--config {path}: cannot read: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"--config {path}: invalid YAML: {' '.join(str(err).split())}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: must be a mapping of hyperparameters, got {type(data).__name__}")
    return data


def _check_type(key: str, default: Any, value: Any) -> Any:
    """Coerce int->float where the default is a float; refuse values of another kind than the default."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"hyperparameter {key}: expected true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"hyperparameter {key}: expected a number, got {value!r}")
        return float(value) if isinstance(default, float) else value
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"hyperparameter {key}: expected a string, got {value!r}")
    return value


def validate(params: dict[str, Any]) -> None:
    """Check enumerations and ranges of a merged config; raise ConfigError naming the field."""
    for key, allowed in CHOICES.items():
        if key in params and params[key] not in allowed:
            raise ConfigError(f"hyperparameter {key}: {params[key]!r} is not one of {', '.join(allowed)}")
    for key in POSITIVE_INTS:
        if key in params and (not isinstance(params[key], int) or params[key] < 1):
            raise ConfigError(f"hyperparameter {key}: must be an integer >= 1, got {params[key]!r}")
    for key in NON_NEGATIVE_INTS:
        if key in params and (not isinstance(params[key], int) or params[key] < 0):
            raise ConfigError(f"hyperparameter {key}: must be an integer >= 0, got {params[key]!r}")
    layers = params.get("layers")
    if layers is not None and (
        not isinstance(layers, list) or not all(isinstance(n, int) and n >= 1 for n in layers)
    ):
        raise ConfigError(f"hyperparameter layers: must be null or a list of integers >= 1, got {layers!r}")


def resolve(
    model: str,
    config_file: str | Path | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """The run's hyperparameters: defaults < --config file < --set overrides, validated.

    Unknown keys raise ConfigError naming the key and listing the allowed ones.
    """
    try:
        params = default_hyperparameters(model)
    except KeyError:
        raise ConfigError(f"--model: unknown model {model!r}; known: {', '.join(model_names())}") from None
    layered: list[tuple[str, dict[str, Any]]] = []
    if config_file is not None:
        layered.append((f"--config {config_file}", load_config_file(config_file)))
    layered.append(("--set", dict(parse_set(item) for item in overrides)))
    for source, values in layered:
        for key, value in values.items():
            if key not in params:
                raise ConfigError(
                    f"{source}: unknown hyperparameter {key!r} for {model}; allowed: {', '.join(sorted(params))}"
                )
            params[key] = _check_type(key, params[key], value)
    validate(params)
    return params


def save_resolved(params: dict[str, Any], model: str, path: str | Path) -> None:
    """Write the resolved config (with the model name) as YAML, for reproducing a run."""
    record = {"model": model, **params}
    Path(path).write_text(yaml.safe_dump(record, sort_keys=True), encoding="utf-8")
