"""The zoo's models: `create_model(name, num_classes, ...)`, `list_models()`, `model_spec(name)`.

Every model is the one ResNet trunk of `zoo_workloads.models.resnet` plus hooks; importing this package
registers them all (`zoo_workloads.models.variants`).
"""

from zoo_workloads.models import variants as _variants  # noqa: F401  (registers the models)
from zoo_workloads.models.layers.common import count_params
from zoo_workloads.models.registry import ModelSpec, create_model, list_models, model_kwargs, model_spec
from zoo_workloads.models.resnet import freeze_except

__all__ = [
    "ModelSpec",
    "count_params",
    "create_model",
    "freeze_except",
    "list_models",
    "model_kwargs",
    "model_spec",
]
