"""Spec parsing and validation: defaults, and one clear error per bad field."""

from __future__ import annotations

import pytest
from operator_jobs import ascend_job, job

from zoo_operator import spec
from zoo_operator.settings import Settings

SETTINGS = Settings(image_cpu="cpu:1", image_gpu="gpu:1", image_ascend="ascend:1")


def parse(body: dict) -> spec.JobSpec:
    return spec.parse(body, SETTINGS)


def problems(body: dict) -> str:
    with pytest.raises(spec.InvalidSpec) as info:
        parse(body)
    return str(info.value)


def test_cpu_defaults() -> None:
    js = parse(job())
    assert js.launch == "dynamic"
    assert js.image == "cpu:1"
    assert js.resource_name is None
    assert js.pod_count == 3  # two workers and the scheduler
    assert js.backoff_limit == 3 and js.clean_pod_policy == "Running" and js.scheduling_timeout_seconds == 600
    assert js.checkpoint_volume == {"emptyDir": {}} and js.checkpoint_path == "ns1/demo-uid-1"


def test_ascend_defaults() -> None:
    js = parse(ascend_job())
    assert js.launch == "ranktable"
    assert js.resource_name == "huawei.com/Ascend910"
    assert js.image == "ascend:1"
    assert js.rank_table_version == "1.0"
    assert js.pod_count == 4
    assert js.ascend is not None and js.ascend.chip == "910B" and not js.gang


def test_ascend_chip_rank_table_and_volcano_default() -> None:
    assert parse(ascend_job(device={"type": "Ascend910", "chip": "A3"})).rank_table_version == "1.2"
    assert "chip A3 needs rank table 1.2" in problems(
        ascend_job(device={"type": "Ascend910", "chip": "A3"}, rankTable={"version": "1.0"})
    )
    assert "chip 910B needs rank table 1.0" in problems(ascend_job(rankTable={"version": "1.2"}))
    assert "spec.device.chip: only for" in problems(job(device={"type": "GPU", "chip": "910"}))
    assert "spec.device.chip: must be one of" in problems(
        ascend_job(device={"type": "Ascend910", "chip": "310P"})
    )
    assert parse(job()).ascend is None
    volcano = Settings(ascend_volcano=True)
    assert (
        spec.parse(ascend_job(), volcano).gang
        and spec.parse(ascend_job(), volcano).scheduler_name == "volcano"
    )
    assert not spec.parse(ascend_job(scheduling={"gang": False}), volcano).gang
    assert not spec.parse(job(), volcano).gang  # CPU jobs keep their own choice


def test_gpu_default_resource_and_explicit_image() -> None:
    js = parse(job(device={"type": "GPU"}, image="my/image:2"))
    assert js.resource_name == "nvidia.com/gpu" and js.image == "my/image:2" and js.launch == "dynamic"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"model": "vgg16"}, "spec.model: must be one of"),
        ({"model": None}, "spec.model: required"),
        ({"device": {"type": "TPU"}}, "spec.device.type: must be one of Ascend910, GPU, CPU"),
        ({"replicas": 0}, "spec.replicas: must be between 1 and 4096"),
        (
            {"device": {"type": "CPU", "perNode": 3}},
            "spec.replicas must be a multiple of spec.device.perNode",
        ),
        ({"launch": "ranktable"}, "spec.launch: ranktable requires spec.device.type Ascend910"),
        ({"device": {"type": "CPU", "resourceName": "x/y"}}, "spec.device.resourceName: CPU jobs"),
        (
            {"hyperparameters": {"optimizer": "thor"}},
            "spec.hyperparameters.optimizer: thor (set) has no CPU kernels",
        ),
        (
            {"hyperparameters": {"epochs": "many"}},
            "spec.hyperparameters.epochs: 'many' is not a number: must be an integer >= 1",
        ),
        (
            {"hyperparameters": {"lr_max": [1]}},
            "spec.hyperparameters.lr_max: [1] is not a number: must be a number > 0",
        ),
        ({"dataset": None}, "spec.dataset: required"),
        ({"runPolicy": {"cleanPodPolicy": "Sometimes"}}, "spec.runPolicy.cleanPodPolicy: must be one of All"),
        ({"runPolicy": {"backoffLimit": -1}}, "spec.runPolicy.backoffLimit: must be between 0 and 100"),
        ({"scheduling": {"gang": True, "schedulerName": "default-scheduler"}}, "must be 'volcano'"),
        ({"rankTable": {"version": "2.0"}}, "spec.rankTable.version: must be one of 1.0, 1.2"),
        (
            {"hyperparameters": {"lr_mode": "sometimes"}},
            "spec.hyperparameters.lr_mode: 'sometimes' is invalid: must be one of linear, poly",
        ),
        (
            {"hyperparameters": {"epochs": 0}},
            "spec.hyperparameters.epochs: 0 is out of range: must be an integer >= 1",
        ),
    ],
)
def test_bad_fields_are_named(changes: dict, expected: str) -> None:
    assert expected in problems(job(**changes))


def test_cpu_job_refused_when_the_model_defaults_to_thor() -> None:
    found = problems(job(model="multigrain"))
    assert "spec.hyperparameters.optimizer: thor (multigrain's default) has no CPU kernels" in found
    assert parse(job(model="multigrain", hyperparameters={"optimizer": "momentum"})).model == "multigrain"


def test_list_and_null_defaults_accept_lists() -> None:
    js = parse(job(hyperparameters={"layers": [1, 1, 1, 1], "resume": "x.ckpt"}))
    assert js.hyperparameters["layers"] == [1, 1, 1, 1]


def test_unknown_hyperparameter_lists_the_allowed_keys() -> None:
    message = problems(job(hyperparameters={"learning_rate": 0.1}))
    assert message.startswith("spec.hyperparameters.learning_rate: unknown hyperparameter for resnet50_bam")
    # the allowed keys, alphabetically; bounded_message cuts the list's tail (PROBLEM_CHARS)
    assert "allowed: amp_level, " in message and "lr_max" in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("trainPath", "/abs/train", "no leading /"),
        ("trainPath", "a/../../etc", "'..'"),
        ("evalPath", "..", "'..'"),
    ],
)
def test_dataset_paths_must_be_relative(field: str, value: str, expected: str) -> None:
    body = job()
    body["spec"]["dataset"][field] = value
    message = problems(body)
    assert f"spec.dataset.{field}" in message and expected in message


def test_dataset_volume_needs_exactly_one_source() -> None:
    body = job()
    body["spec"]["dataset"]["volume"] = {"hostPath": {"path": "/d"}, "emptyDir": {}}
    assert "spec.dataset.volume: must set exactly one of" in problems(body)


def test_every_problem_is_reported() -> None:
    message = problems(job(model="nope", replicas=0))
    assert "spec.model" in message and "spec.replicas" in message


def test_long_name_is_refused_because_pod_names_are_hostnames() -> None:
    assert "metadata.name: too long" in problems(job(name="x" * 56, replicas=100))


def test_name_must_be_a_dns_label() -> None:
    assert "metadata.name" in problems(job(name="1bad"))


def test_static_devices_complete_and_consistent() -> None:
    static = [
        {"podIndex": 0, "serverId": "10.0.0.1", "deviceId": "0", "deviceIp": "192.168.0.1"},
        {"podIndex": 1, "serverId": "10.0.0.1", "deviceId": "1", "deviceIp": "192.168.0.2"},
    ]
    js = parse(ascend_job(replicas=2, rankTable={"staticDevices": static}))
    assert [d.device_id for d in js.static_devices] == ["0", "1"]
    assert "missing 1" in problems(ascend_job(replicas=2, rankTable={"staticDevices": static[:1]}))
    clash = [static[0], {**static[1], "deviceId": "0"}]
    assert "assigned to two pods" in problems(ascend_job(replicas=2, rankTable={"staticDevices": clash}))
    assert "only allowed with spec.device.type Ascend910" in problems(
        job(replicas=2, rankTable={"staticDevices": static})
    )


def test_malformed_objects_do_not_crash() -> None:
    for body in ({}, {"spec": None}, {"spec": "text"}, {"metadata": {"name": "a"}, "spec": {"device": 3}}):
        with pytest.raises(spec.InvalidSpec):
            parse(body)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"image_size": 12}, "spec.hyperparameters.image_size: 12 is out of range: must be an integer >= 16"),
        (
            {"layers": [1, 1]},
            "spec.hyperparameters.layers: [1, 1] is invalid: must be a list of 4 integers >= 1",
        ),
        ({"layers": [1, 1, 1, 1, 1]}, "spec.hyperparameters.layers: [1, 1, 1, 1, 1] is invalid"),
    ],
)
def test_model_shapes_create_model_cannot_build_are_refused_naming_the_field(
    params: dict, expected: str
) -> None:
    """The table says exactly what create_model builds (issue 20: these passed the operator, then exited 64)."""
    with pytest.raises(spec.InvalidSpec) as err:
        spec.parse(job(hyperparameters={"epochs": 1, **params}), Settings())
    assert expected in str(err.value)


def test_process_restarts_reach_every_pod_as_zoo_launchs_bound() -> None:
    from zoo_operator import render
    from zoo_workloads import contract

    def launch_env(js: spec.JobSpec, role: str, index: int | None) -> dict[str, str]:
        return {e["name"]: e.get("value", "") for e in render.env(js, role, index)}

    unset = parse(job())
    assert unset.process_restarts is None
    assert contract.ENV_PROCESS_RESTARTS not in launch_env(unset, "worker", 0)  # zoo-launch's default applies
    off = parse(job(runPolicy={"processRestarts": 0}))
    assert launch_env(off, "worker", 1)[contract.ENV_PROCESS_RESTARTS] == "0"
    assert launch_env(off, "scheduler", None)[contract.ENV_PROCESS_RESTARTS] == "0"  # the whole gang
    assert "spec.runPolicy.processRestarts: must be between 0 and 100" in problems(
        job(runPolicy={"processRestarts": 101})
    )
