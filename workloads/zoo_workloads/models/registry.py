"""Model registry: `@register_model` variant functions, looked up by name (timm's create_model pattern)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mindspore import nn

from zoo_workloads import config


@dataclass(frozen=True)
class ModelSpec:
    """What a registered model is: its input kind and default input shape, its outputs and its paper."""

    name: str
    input_kind: Literal["image", "video"]
    input_shape: tuple[int, ...]  # (C, H, W) for images, (C, T, H, W) for clips, at the design size
    outputs: Literal["logits", "logits+embedding"]
    paper: str  # arXiv id
    description: str
    hparam_keys: tuple[str, ...] = ()  # hyperparameters (zoo_workloads.config) that are model kwargs


Builder = Callable[..., nn.Cell]
_REGISTRY: dict[str, tuple[ModelSpec, Builder]] = {}


def register_model(spec: ModelSpec) -> Callable[[Builder], Builder]:
    """Decorator: register `fn(num_classes, *, image_size, width, layers, **kwargs) -> Cell` under spec.name."""

    def wrap(fn: Builder) -> Builder:
        if spec.name in _REGISTRY:
            raise ValueError(f"model {spec.name!r} registered twice")
        _REGISTRY[spec.name] = (spec, fn)
        return fn

    return wrap


def list_models() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(_REGISTRY)


def _lookup(name: str) -> tuple[ModelSpec, Builder]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _REGISTRY[name]


def model_spec(name: str) -> ModelSpec:
    """The ModelSpec of a registered model; ValueError naming the known models for an unknown name."""
    return _lookup(name)[0]


def model_kwargs(name: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """The model kwargs found in a hyperparameter mapping (those named by the spec's hparam_keys)."""
    return {key: hparams[key] for key in model_spec(name).hparam_keys if key in hparams}


def create_model(
    name: str,
    num_classes: int,
    *,
    image_size: int | None = None,
    width: int = 64,
    layers: list[int] | None = None,
    **model_kwargs: Any,
) -> nn.Cell:
    """Build a registered model.

    image_size: the input's height/width (default: the design size of model_spec(name).input_shape); width: the
    trunk's base width (64 = the paper's); layers: blocks per stage (default: the paper's). Model-specific
    kwargs are the model's hyperparameters (e.g. ge_extra, gem_p); unknown keys raise TypeError naming them.
    """
    spec, builder = _lookup(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not isinstance(width, int) or width < 2 or width % 2:
        raise ValueError(f"width must be an even integer >= 2, got {width!r}")
    if image_size is None:
        image_size = spec.input_shape[-1]
    if not isinstance(image_size, int) or image_size < config.MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be an integer >= {config.MIN_IMAGE_SIZE}, got {image_size!r}")
    if layers is not None and (
        len(layers) != config.STAGES or any(not isinstance(n, int) or n < 1 for n in layers)
    ):
        raise ValueError(
            f"layers must be {config.STAGES} positive integers (blocks per stage), got {layers!r}"
        )
    return builder(num_classes, image_size=image_size, width=width, layers=layers, **model_kwargs)
