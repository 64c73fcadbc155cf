"""Model default hyperparameters: the one source of truth, read by training and by the operator.

Pure Python and YAML only: the operator imports this module without MindSpore installed.
Resolution order for a run: common.yaml < <model>.yaml < --config FILE < --set key=value.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
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
# Keys of a run's saved config.yaml that are not hyperparameters: the model, and `run` (num_classes, data_dir,
# eval_dir, device). A saved config is accepted back as --config: `model` must match, `run` is not a hyperparameter.
RUN_KEYS = ("model", "run")
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
    config_file: str | Path | Sequence[str | Path] | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """The run's hyperparameters: defaults < --config file(s), in order < --set overrides, validated.

    Unknown keys raise ConfigError naming the key and listing the allowed ones.
    """
    try:
        params = default_hyperparameters(model)
    except KeyError:
        raise ConfigError(f"--model: unknown model {model!r}; known: {', '.join(model_names())}") from None
    layered: list[tuple[str, dict[str, Any]]] = []
    files = [] if config_file is None else [config_file] if isinstance(config_file, (str, Path)) else config_file
    for item in files:
        values = load_config_file(item)
        saved_for = values.get("model")
        if saved_for is not None and saved_for != model:
            raise ConfigError(f"--config {item}: saved for model {saved_for!r}, not {model!r}")
        layered.append((f"--config {item}", {k: v for k, v in values.items() if k not in RUN_KEYS}))
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


def save_resolved(params: dict[str, Any], model: str, path: str | Path, run: dict[str, Any] | None = None) -> None:
    """Write the resolved config (with the model name, and `run`: num_classes, data dirs, device) as YAML, for
    reproducing a run; it is accepted back as --config, and zoo-eval/zoo-export --run read it."""
    record = {"model": model, **params}
    if run:
        record["run"] = dict(run)
    Path(path).write_text(yaml.safe_dump(record, sort_keys=True), encoding="utf-8")


def load_run(path: str | Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(model, hyperparameters, run record) of a saved config.yaml; ConfigError when it is not one."""
    values = load_config_file(path)
    model = values.get("model")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{path}: not a run's saved config (no `model` key)")
    run = values.get("run") if isinstance(values.get("run"), dict) else {}
    return model, {k: v for k, v in values.items() if k not in RUN_KEYS}, dict(run)
