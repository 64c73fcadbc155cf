"""Safe by default (issue 11): values reach the workload exactly, every hyperparameter is declared once with a
range the operator checks, and no value (however big) is repeated in full in a message."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from operator_jobs import ascend_job, job

from zoo_operator import render, schema
from zoo_operator.settings import Settings
from zoo_operator.spec import InvalidSpec, bounded_message, parse
from zoo_workloads import config
from zoo_workloads.errors import ConfigError

SETTINGS = Settings(image_cpu="zoo-operator/workload-cpu:t", image_ascend="zoo-operator/workload-ascend:t")


def problems(body: dict[str, Any]) -> str:
    with pytest.raises(InvalidSpec) as info:
        parse(body, SETTINGS)
    return str(info.value)


ROUND_TRIP = [
    1e-05,
    5e-05,
    1e-07,
    1e308,
    -0.0,
    0.1,
    2.5e-310,
    1e16,
    0,
    3,
    -7,
    2**40,
    True,
    False,
    None,
    "0.5",
    "1e-3",
    "yes",
    "no",
    "null",
    "true",
    "",
    "cosine",
    "a b",
    "x: y",
    "[1]",
    "ü",
    'q"uote',
    "/zoo/checkpoint/a.ckpt",
    [1, 1, 1, 1],
    [0.5, "x", None],
    [],
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=repr)
def test_every_value_reaches_the_workload_exactly(value: Any) -> None:
    text = render.set_value(value)
    key, back = config.parse_set(f"k={text}")
    assert key == "k" and back == value and type(back) is type(value)
    if isinstance(value, float):
        assert math.copysign(1.0, back) == math.copysign(1.0, value)
    # A YAML 1.1 reader (an older workload, a person) reads numbers the same way too.
    if isinstance(value, float | int) and not isinstance(value, bool):
        assert yaml.safe_load(text) == value


def test_small_floats_are_not_strings_any_more() -> None:
    js = parse(job(hyperparameters={"weight_decay": 0.00001, "lr_max": 5e-05}), SETTINGS)
    sets = [a for a in render.command(js) if a.startswith(("weight_decay=", "lr_max="))]
    resolved = config.resolve("resnet50_bam", None, sets)
    assert resolved["weight_decay"] == 1e-05 and resolved["lr_max"] == 5e-05


def test_people_still_type_yaml_scalars() -> None:
    assert config.parse_value("cosine") == "cosine"
    assert config.parse_value("yes") is True
    assert config.parse_value("[1, 1]") == [1, 1]
    assert config.parse_value("1e-05") == 1e-05  # JSON first: a float, where YAML 1.1 alone said a string


def test_non_finite_floats_are_refused() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        config.encode_value(math.inf)


def test_every_key_of_every_model_is_declared_with_a_meaning_and_its_default_in_range() -> None:
    for model in config.model_names():
        defaults = config.default_hyperparameters(model)
        assert set(defaults) <= set(config.PARAMS), (model, set(defaults) - set(config.PARAMS))
        assert config.problems(defaults) == [], model
    for key, param in config.PARAMS.items():
        assert param.meaning and "\n" not in param.meaning, key
        assert param.range_text(), key


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("lr_max", -1, "lr_max: -1 is out of range: must be a number > 0"),
        ("lr_max", 0, "lr_max: 0 is out of range: must be a number > 0"),
        ("label_smoothing", 5, "label_smoothing: 5 is out of range: must be a number >= 0 and < 1"),
        ("momentum", -3, "momentum: -3 is out of range: must be a number >= 0 and < 1"),
        (
            "num_parallel_workers",
            0,
            "num_parallel_workers: 0 is out of range: must be an integer >= 1 and <= 64",
        ),
        ("epochs", 2.0, "epochs: 2.0 is not an integer"),
        ("width", 7, "width: 7 is out of range: must be an integer >= 2 and <= 4096, even"),
        ("autoaugment", 1, "autoaugment: 1 is invalid: must be true or false"),
        ("lr_mode", "exp", "lr_mode: 'exp' is invalid: must be one of linear, poly, cosine, steps"),
        ("layers", [1, 0], "layers: [1, 0] is invalid: must be a list of 4 integers >= 1, or null"),
        ("pretrained", "x" * 5000, "pretrained: too long (5000 characters): must be at most 1024"),
        ("seed", True, "seed: True is not a number"),
    ],
)
def test_ranges_are_checked_naming_the_field(key: str, value: Any, expected: str) -> None:
    assert (config.check(key, value) or "").startswith(expected)
    assert f"spec.hyperparameters.{expected}" in problems(job(hyperparameters={key: value}))
    # The workload refuses the same value as a configuration error (exit 64), never a retryable one.
    with pytest.raises(ConfigError, match=key):
        config.resolve("resnet50_bam", None, [f"{key}={config.encode_value(value)}"])


def test_ints_are_fine_where_floats_are_declared() -> None:
    assert config.check("lr_max", 1) is None
    assert isinstance(config.resolve("resnet50_bam", None, ["lr_max=1"])["lr_max"], float)


def test_a_huge_value_is_never_repeated_in_full() -> None:
    huge = "x" * 900_000
    for body in (
        job(hyperparameters={"lr_mode": huge}),
        job(hyperparameters={"pretrained": huge}),
        job(hyperparameters={huge: 1}),
        job(image=huge),
        job(checkpoint={"path": huge}),
    ):
        message = problems(body)
        assert len(message) < 2000, len(message)
    message = problems(job(hyperparameters={"lr_mode": huge}))
    assert "(900002 characters)" in message


def test_invalid_spec_message_lists_at_most_ten_problems() -> None:
    message = bounded_message([f"spec.x{i}: bad {'y' * 5000}" for i in range(50)])
    assert len(message) < 7000 and message.endswith("and 40 more problem(s)") and "\n" not in message


@pytest.mark.parametrize("ip", ["banana", "999.1.1.1", "1.2.3", "::1", "10.0.0.1 "])
def test_static_device_ip_must_be_ipv4(ip: str) -> None:
    devices = [
        {"podIndex": 0, "serverId": "10.0.0.1", "deviceId": "0", "deviceIp": ip},
        {"podIndex": 1, "serverId": "10.0.0.1", "deviceId": "1", "deviceIp": "192.168.100.102"},
    ]
    message = problems(ascend_job(rankTable={"staticDevices": devices}))
    assert "spec.rankTable.staticDevices[0].deviceIp: must be an IPv4 address" in message


def test_static_device_ip_rule_in_the_crd() -> None:
    static = schema.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["rankTable"]["properties"]["staticDevices"]["items"]["properties"]["deviceIp"]
    rules = static["x-kubernetes-validations"]
    assert rules[0]["rule"] == "isIP(self) && ip(self).family() == 4" and "IPv4" in rules[0]["message"]
    assert static["maxLength"] == 15


def test_crd_bounds_free_string_hyperparameters() -> None:
    hyper = schema.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["hyperparameters"]["properties"]
    assert hyper["pretrained"]["maxLength"] == 1024 and hyper["pretrained"]["nullable"] is True
    assert hyper["resume"]["maxLength"] == 1024


def test_crd_bounds_every_free_string_of_the_spec() -> None:
    """Every string field under spec has a maxLength or an enum (free-form objects are bounded by spec.py)."""
    spec = schema.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    unbounded: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "string" and "maxLength" not in node and "enum" not in node:
            unbounded.append(path)
        for key, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{key}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{path}.{key}")

    walk(spec, "spec")
    assert unbounded == []


def test_zoo_models_info_explains_each_hyperparameter() -> None:
    from zoo_workloads.cli.models import hyperparameter_help

    helps = hyperparameter_help("multigrain")
    assert helps["lr_max"] == {
        "meaning": "peak learning rate (after warmup)",
        "default": 0.05672,
        "range": "a number > 0",
    }
    assert (
        helps["optimizer"]["range"] == "one of momentum, nesterov, thor"
        and helps["optimizer"]["default"] == "thor"
    )
    assert set(helps) == set(config.default_hyperparameters("multigrain"))
