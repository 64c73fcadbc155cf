"""Model default hyperparameters: the one source of truth, read by training and by the operator.

Pure Python and YAML only: the operator imports this module without MindSpore installed.
Resolution order for a run: common.yaml < <model>.yaml < --config FILE < --set key=value.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from zoo_workloads.errors import ConfigError

_CONFIG_PACKAGE = "zoo_workloads.configs"

# Longest piece of a user's value quoted back in an error message (a 900 KB value is never repeated).
QUOTE_CHARS = 200
# What create_model builds (models/registry.py checks against these, so the table and the builder agree): the
# trunk's four stages, and the smallest input its five halvings keep at least one pixel of.
STAGES = 4
MIN_IMAGE_SIZE = 16
MAX_LIST_ITEMS = 16


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """repr(value), cut to `limit` characters with a note of the full length, for error messages."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 3]}... ({len(text)} characters)"


@dataclasses.dataclass(frozen=True)
class Param:
    """The declaration of one hyperparameter: its kind, its range and what it means (one line).

    kind: int | float | bool | str | choice | path | int_list. Bounds are inclusive unless the `*_open` flag is
    set; `nullable` allows null (the YAML default of optional values).
    """

    kind: str
    meaning: str
    minimum: float | None = None
    maximum: float | None = None
    minimum_open: bool = False
    maximum_open: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False
    even: bool = False
    max_length: int = 1024
    length: int | None = None  # int_list: exactly this many entries (None: 1 to MAX_LIST_ITEMS)

    def range_text(self) -> str:
        """The allowed values in words: `> 0`, `>= 0 and < 1`, `one of a, b`, `true or false`..."""
        if self.kind == "choice":
            text = "one of " + ", ".join(self.choices)
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind in ("str", "path"):
            text = f"a string of at most {self.max_length} characters"
        elif self.kind == "int_list":
            count = f"{self.length}" if self.length else f"1 to {MAX_LIST_ITEMS}"
            text = f"a list of {count} integers >= {_num(self.minimum)}"
        else:
            parts = []
            if self.minimum is not None:
                parts.append(f"{'>' if self.minimum_open else '>='} {_num(self.minimum)}")
            if self.maximum is not None:
                parts.append(f"{'<' if self.maximum_open else '<='} {_num(self.maximum)}")
            what = "an integer" if self.kind == "int" else "a number"
            text = f"{what} {' and '.join(parts)}".strip() + (", even" if self.even else "")
        return text + (", or null" if self.nullable else "")


def _num(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def _int_param(meaning: str, minimum: int, maximum: int | None = None, **extra: Any) -> Param:
    return Param("int", meaning, minimum, maximum, **extra)


def _float_param(meaning: str, minimum: float | None, maximum: float | None = None, **extra: Any) -> Param:
    return Param("float", meaning, minimum, maximum, **extra)


_BIG = 1_000_000
# Every hyperparameter of every model, declared once: kind, range and a one-line meaning. The defaults are in
# configs/*.yaml; a test checks that every key there is declared here and that every default is in range.
PARAMS: dict[str, Param] = {
    "epochs": _int_param("passes over the training set", 1, _BIG),
    "batch_size": _int_param("images per rank per step", 1, 65536),
    "steps_per_epoch": _int_param("steps per epoch; 0 = the whole (sharded) dataset", 0, 10**9),
    # The trunk halves the input five times; create_model builds from 16 px up (models/registry.py checks this).
    "image_size": _int_param("side of the square training crop, in pixels", MIN_IMAGE_SIZE, 4096),
    "lr_mode": Param("choice", "learning-rate schedule", choices=("linear", "poly", "cosine", "steps")),
    "lr_init": _float_param("learning rate at the start of warmup", 0.0),
    "lr_max": _float_param("peak learning rate (after warmup)", 0.0, minimum_open=True),
    "lr_end": _float_param("learning rate at the end of the schedule", 0.0),
    "warmup_epochs": _int_param("epochs of linear warmup from lr_init to lr_max", 0, _BIG),
    "optimizer": Param(
        "choice", "optimizer (thor: Ascend/GPU only)", choices=("momentum", "nesterov", "thor")
    ),
    "momentum": _float_param("momentum of the SGD optimizers", 0.0, 1.0, maximum_open=True),
    "weight_decay": _float_param("L2 weight decay", 0.0, 1.0),
    "label_smoothing": _float_param("label smoothing of the cross-entropy loss", 0.0, 1.0, maximum_open=True),
    "loss_scale": _float_param("static loss scale of mixed precision", 1.0, 2.0**24),
    "amp_level": Param(
        "choice",
        "mixed precision level (auto = O0 on CPU, O2 elsewhere)",
        choices=("auto", "O0", "O1", "O2", "O3"),
    ),
    "width": _int_param("stem/base width of the trunk (64 = the paper's)", 2, 4096, even=True),
    "eval_interval": _int_param("evaluate every N epochs (0 = only at the end)", 0, _BIG),
    "save_checkpoint_epochs": _int_param("save a checkpoint every N epochs (0 = only at the end)", 0, _BIG),
    "keep_checkpoint_max": _int_param("checkpoints kept on disk", 0, _BIG),
    # Step checkpoints (issue 23): bounded loss after a crash, written in the background (training/stepsave.py).
    "save_checkpoint_steps": _int_param(
        "save a mid-epoch step checkpoint every N steps, written in the background (0 = off)", 0, _BIG
    ),
    "save_checkpoint_seconds": _float_param(
        "save a mid-epoch step checkpoint every S seconds of training, written in the background (0 = off; "
        "ignored with save_every_rank on several ranks, whose clocks would pick different steps)",
        0.0,
        86400.0,
    ),
    "keep_step_checkpoints": _int_param(
        "step checkpoints kept on disk, apart from the keep_checkpoint_max epoch ones (0 = all)", 0, _BIG
    ),
    "seed": _int_param("random seed", 0, 2**32 - 1),
    "layers": Param(
        "int_list",
        "blocks per stage, e.g. [1, 1, 1, 1]; null = the model's own",
        1,
        nullable=True,
        length=STAGES,
    ),
    "lr_power": _float_param("exponent of the poly schedule", 0.0, 100.0, minimum_open=True),
    "cosine_epochs": _int_param(">0: per-epoch cosine over this many epochs; 0: per-step cosine", 0, _BIG),
    "autoaugment": Param("bool", "AutoAugment (ImageNet policy) after the random crop"),
    "color_jitter": _float_param("brightness/contrast/saturation jitter (hue gets a quarter)", 0.0, 1.0),
    "repeated_augment": _int_param("each image this many times per batch, independently augmented", 1, 64),
    "eval_batch_size": _int_param("evaluation batch size (0 = batch_size)", 0, 65536),
    "num_parallel_workers": _int_param("data pipeline workers per rank", 1, 64),
    "mode": Param("choice", "MindSpore execution mode", choices=("graph", "pynative")),
    "sink_size": _int_param(
        "Ascend data sink: steps per sink, a divisor of the steps per epoch (0 = automatic: "
        "about 5 s of steps at ascend_step_ms)",
        0,
        10**9,
    ),
    "ascend_step_ms": _float_param(
        "the model's reference Ascend step time in ms (the seed's), which sizes the automatic data sink",
        0.0,
        60_000.0,
        minimum_open=True,
    ),
    "resume": Param("path", "checkpoint to resume from (optimizer state included)", nullable=True),
    "pretrained": Param(
        "path", "checkpoint whose network weights start the run (fine-tuning)", nullable=True
    ),
    "crop_min_scale": _float_param(
        "smallest area fraction of the random resized crop (1.0: no random crop)", 0.0, 1.0, minimum_open=True
    ),
    "random_flip": Param("bool", "random horizontal flip in training"),
    "save_every_rank": Param(
        "bool",
        "every rank writes its own copy of the weights (rank_<i>/), for ranks that "
        "differ; default: rank 0 writes the one copy",
    ),
    "ge_extra": Param("bool", "GE-theta-plus: extra gather depth"),
    "ge_mlp": Param("bool", "GE-theta-plus: MLP excite"),
    "clip_length": _int_param("frames per video clip", 1, 1024),
    "finetune_last_stage": Param("bool", "train only the last stage and the classifier"),
    "thor_damping_init": _float_param("THOR: initial damping", 0.0, minimum_open=True),
    "thor_damping_decay": _float_param("THOR: damping decay rate", 0.0, 1.0, minimum_open=True),
    "thor_frequency": _int_param("THOR: steps between second-order updates", 1, _BIG),
    "mix_lambda": _float_param("loss = lambda * CE + (1 - lambda) * margin loss", 0.0, 1.0),
    "margin_alpha": _float_param("margin loss: margin", 0.0),
    "margin_beta_init": _float_param("margin loss: initial boundary", 0.0),
    "gem_p": _float_param("exponent of generalized-mean pooling", 0.0, minimum_open=True),
}
# Keys of a run's saved config.yaml that are not hyperparameters: the model, and `run` (num_classes, data_dir,
# eval_dir, device). A saved config is accepted back as --config: `model` must match, `run` is not a hyperparameter.
RUN_KEYS = ("model", "run")
# Kept for callers that list enumerations (the CRD types these keys so CEL and kubectl see them).
CHOICES: dict[str, tuple[str, ...]] = {k: p.choices for k, p in PARAMS.items() if p.kind == "choice"}


def check(key: str, value: Any) -> str | None:
    """The problem with one value of a declared hyperparameter, or None. Messages start with the key."""
    param = PARAMS.get(key)
    if param is None:
        return None
    if value is None:
        return None if param.nullable else f"{key}: must be {param.range_text()}, got null"
    kind = param.kind
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "choice":
        ok = isinstance(value, str) and value in param.choices
    elif kind in ("str", "path"):
        if isinstance(value, str) and len(value) > param.max_length:
            return f"{key}: too long ({len(value)} characters): must be at most {param.max_length}"
        ok = isinstance(value, str) and bool(value)
    elif kind == "int_list":
        ok = (
            isinstance(value, list)
            and (len(value) == param.length if param.length else 0 < len(value) <= MAX_LIST_ITEMS)
            and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= (param.minimum or 0) for n in value
            )
        )
    else:
        return _check_number(key, param, value)
    return None if ok else f"{key}: {quote(value)} is invalid: must be {param.range_text()}"


def _check_number(key: str, param: Param, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{key}: {quote(value)} is not a number: must be {param.range_text()}"
    if param.kind == "int" and not isinstance(value, int):
        return f"{key}: {quote(value)} is not an integer: must be {param.range_text()}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{key}: {quote(value)} is out of range: must be {param.range_text()}"
    low, high = param.minimum, param.maximum
    below = low is not None and (value <= low if param.minimum_open else value < low)
    above = high is not None and (value >= high if param.maximum_open else value > high)
    if below or above or (param.even and value % 2):
        return f"{key}: {quote(value)} is out of range: must be {param.range_text()}"
    return None


def problems(params: dict[str, Any]) -> list[str]:
    """Every problem of a merged config, one line each starting with the key (empty when valid)."""
    return [p for p in (check(key, value) for key, value in params.items()) if p is not None]


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
        raise KeyError(f"unknown model {quote(model)}; known: {', '.join(model_names())}")
    merged = dict(_load("common"))
    merged.update(_load(model))
    return merged


MAX_YAML_DEPTH = 8
"""Deepest nesting of collections a YAML text may have (hyperparameter values are scalars or flat lists)."""
MAX_YAML_BYTES = 1 << 20
"""Largest YAML text read (a --config file, a --set value, a job file for `zoo-operator render`)."""


class UnsafeYAML(yaml.YAMLError):
    """YAML refused for its shape (anchors, aliases, nesting, size), not for its syntax."""


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases (an alias bomb, "billion laughs", expands a few hundred bytes
    into gigabytes: https://en.wikipedia.org/wiki/Billion_laughs_attack) and nesting deeper than MAX_YAML_DEPTH.
    Nothing we read needs either: configs are flat mappings of scalars and short lists."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise UnsafeYAML(f"YAML anchors and aliases are not allowed (line {event.start_mark.line + 1})")
        depth = getattr(self, "_zoo_depth", 0)
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if depth >= MAX_YAML_DEPTH:
                raise UnsafeYAML(
                    f"YAML nested deeper than {MAX_YAML_DEPTH} levels (line {event.start_mark.line + 1})"
                )
            self._zoo_depth = depth + 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._zoo_depth = depth
        return super().compose_node(parent, index)


def safe_yaml(text: str) -> Any:
    """yaml.safe_load without anchors, aliases, deep nesting or more than MAX_YAML_BYTES; yaml.YAMLError else."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise UnsafeYAML(f"YAML text larger than {MAX_YAML_BYTES} bytes")
    return yaml.load(text, Loader=_SafeLoader)  # a SafeLoader subclass


def safe_yaml_all(text: str) -> list[Any]:
    """safe_yaml for a multi-document stream."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise UnsafeYAML(f"YAML text larger than {MAX_YAML_BYTES} bytes")
    return list(yaml.load_all(text, Loader=_SafeLoader))  # a SafeLoader subclass


def parse_value(raw: str) -> Any:
    """A `--set` value: JSON first (what the operator writes, so `1e-05` is a float and `"0.5"` a string),
    else a YAML scalar as a person types it (`cosine`, `yes`, `[1, 1, 1, 1]`). Empty means null."""
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return safe_yaml(raw)
    if _nesting(value) > MAX_YAML_DEPTH:
        raise UnsafeYAML(f"value nested deeper than {MAX_YAML_DEPTH} levels")
    return value


def _nesting(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 0


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one `key=value` override (see parse_value)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {quote(item)}")
    try:
        value = parse_value(raw)
    except yaml.YAMLError as err:
        raise ConfigError(
            f"--set {key}: cannot parse value {quote(raw)}: {' '.join(str(err).split())[:300]}"
        ) from err
    return key, value


def _reads_back_bare(text: str) -> bool:
    if not text or text != text.strip() or "\n" in text or len(text) > 256:
        return False
    try:
        json.loads(text)
    except ValueError:
        pass
    else:
        return False
    try:
        return yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def encode_value(value: Any) -> str:
    """The text of `--set key=<text>` that parse_value reads back as exactly `value`.

    JSON (strings that read back as themselves stay bare), with floats written so that YAML 1.1 readers agree too (`1.0e-05`, never `1e-05`, which PyYAML reads
    as a string). Non-finite floats are refused (no hyperparameter allows them and JSON has none).
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot pass a non-finite number: {value!r}")
        text = repr(value)
        mantissa, sep, exponent = text.partition("e")
        if sep and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, str) and _reads_back_bare(value):
        return value  # `cosine`, `/zoo/checkpoint/x.ckpt`: readable, and parse_value returns the same string
    if isinstance(value, list):
        return "[" + ", ".join(encode_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{json.dumps(str(k), ensure_ascii=False)}: {encode_value(v)}" for k, v in value.items()
            )
            + "}"
        )
    return json.dumps(value, ensure_ascii=False)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a --config YAML file: a flat mapping of hyperparameters."""
    try:
        data = safe_yaml(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"--config {path}: cannot read: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"--config {path}: invalid YAML: {' '.join(str(err).split())}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: must be a mapping of hyperparameters, got {type(data).__name__}")
    return data


def _coerce(key: str, value: Any) -> Any:
    """An int where a float is declared becomes a float; everything else is checked by validate()."""
    param = PARAMS.get(key)
    if param is not None and param.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def validate(params: dict[str, Any]) -> None:
    """Check types, ranges and enumerations of a merged config; raise ConfigError naming the field(s)."""
    found = problems(params)
    if found:
        raise ConfigError("hyperparameter " + "; ".join(found))


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
        raise ConfigError(
            f"--model: unknown model {quote(model)}; known: {', '.join(model_names())}"
        ) from None
    layered: list[tuple[str, dict[str, Any]]] = []
    files = (
        [] if config_file is None else [config_file] if isinstance(config_file, (str, Path)) else config_file
    )
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
            params[key] = _coerce(key, value)
    validate(params)
    return params


def save_resolved(
    params: dict[str, Any], model: str, path: str | Path, run: dict[str, Any] | None = None
) -> None:
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


# Host memory of one rank's container, per device type and model: (request, limit) as Kubernetes quantities.
# The operator gives every rank container both (spec.resources overrides either), so one job cannot starve a
# node; the Ascend pods' memory-backed /dev/shm is sized within the limit (zoo_operator.memlimits). The request
# is what a rank needs at the defaults (batch and image size, num_parallel_workers data workers); the limit
# leaves room for larger batches and the data pipeline's peaks. Ascend and GPU ranks hold a host-side copy of the
# data pipeline's queues and the framework's pinned buffers, hence far more than a CPU rank of a tiny test.
RANK_MEMORY: dict[str, tuple[str, str]] = {
    "CPU": ("1Gi", "8Gi"),
    "GPU": ("8Gi", "32Gi"),
    "Ascend910": ("16Gi", "64Gi"),
}
# Models whose ranks need more: the 200-layer trunk, and 3D video clips (clip_length frames per sample).
RANK_MEMORY_MODEL: dict[str, dict[str, tuple[str, str]]] = {
    "glore_res200": {"CPU": ("2Gi", "12Gi"), "GPU": ("12Gi", "48Gi"), "Ascend910": ("24Gi", "96Gi")},
    "resnet3d": {"CPU": ("2Gi", "16Gi"), "GPU": ("16Gi", "64Gi"), "Ascend910": ("32Gi", "128Gi")},
}
# The dynamic launch's scheduler process: it imports MindSpore and networks the workers, nothing more.
SCHEDULER_MEMORY: tuple[str, str] = ("512Mi", "2Gi")


def rank_memory(model: str, device_type: str) -> tuple[str, str]:
    """(request, limit) of one rank's container memory for a model on a device type (CPU, GPU, Ascend910)."""
    return RANK_MEMORY_MODEL.get(model, {}).get(device_type) or RANK_MEMORY[device_type]
