"""The ZooTrainingJob CRD on a real apiserver: it installs, prints its columns, and refuses bad specs (CEL)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from operator_fixtures import apply, cpu_job, get

pytestmark = pytest.mark.integration


def ascend(name: str, **spec: Any) -> dict[str, Any]:
    return cpu_job(name, device={"type": "Ascend910", "perNode": 2}, **spec)


def test_crd_serves_jobs_with_defaults_and_columns(ztj_crd: Any, namespace: str) -> None:
    body = cpu_job("good", runPolicy={}, scheduling={})
    del body["spec"]["replicas"]
    apply(ztj_crd, namespace, body)
    stored = get(ztj_crd, namespace, "zootrainingjob", "good")
    assert stored is not None
    assert stored["spec"]["replicas"] == 1  # schema defaults applied by the apiserver
    assert stored["spec"]["runPolicy"] == {
        "backoffLimit": 3,
        "cleanPodPolicy": "Running",
        "schedulingTimeoutSeconds": 600,
        "suspend": False,
    }
    # No schema default for gang: the operator settings decide it (Volcano for Ascend where the chart says so).
    assert stored["spec"]["scheduling"] == {}
    header = ztj_crd.kubectl("get", "ztj", "-n", namespace).stdout.splitlines()[0].split()
    assert header == [
        "NAME",
        "MODEL",
        "DEVICES",
        "PHASE",
        "STAGE",
        "EPOCH",
        "STEP",
        "LOSS",
        "TOP-1",
        "ETA",
        "AGE",
    ]
    wide = ztj_crd.kubectl("get", "ztj", "-n", namespace, "-o", "wide").stdout.splitlines()[0].split()
    assert wide[-4:] == ["RESTARTS", "REASON", "IMAGES/S", "COMMAND"]


BAD = [
    (ascend("b1", replicas=3), "spec.replicas must be a multiple of spec.device.perNode"),
    (cpu_job("b2", launch="ranktable"), "spec.launch: ranktable requires spec.device.type Ascend910"),
    (cpu_job("b3", hyperparameters={"optimizer": "thor"}), "spec.hyperparameters.optimizer: thor has no CPU"),
    (cpu_job("b4", device={"type": "CPU", "resourceName": "nvidia.com/gpu"}), "spec.device.resourceName"),
    (cpu_job("b5", model="vgg16"), "spec.model"),
    (cpu_job("b6", replicas=0), "spec.replicas"),
    (
        cpu_job("b7", scheduling={"gang": True, "schedulerName": "default-scheduler"}),
        "spec.scheduling.schedulerName must be 'volcano'",
    ),
    (cpu_job("b8", runPolicy={"cleanPodPolicy": "Sometimes"}), "spec.runPolicy.cleanPodPolicy"),
    (
        ascend(
            "b9",
            replicas=2,
            rankTable={
                "staticDevices": [
                    {"podIndex": 5, "serverId": "10.0.0.1", "deviceId": "0", "deviceIp": "192.168.0.1"}
                ]
            },
        ),
        "spec.rankTable.staticDevices[].podIndex must be less than spec.replicas",
    ),
    # issue 21: one pod per server is for Ascend jobs with perNode (either launch).
    (cpu_job("b10", device={"type": "Ascend910", "podsPer": "server"}), "spec.device.podsPer: server needs"),
    (
        cpu_job("b11", device={"type": "CPU", "perNode": 1, "podsPer": "server"}),
        "spec.device.podsPer: server needs",
    ),
    (cpu_job("b13", device={"type": "Ascend910", "perNode": 1, "podsPer": "node"}), "spec.device.podsPer"),
]


def test_a_server_mode_job_is_accepted_and_device_mode_is_the_default(ztj_crd: Any, namespace: str) -> None:
    apply(ztj_crd, namespace, ascend("srv", replicas=4))
    stored = get(ztj_crd, namespace, "zootrainingjob", "srv")
    assert stored is not None and stored["spec"]["device"]["podsPer"] == "device"
    body = cpu_job("srv2", replicas=4, device={"type": "Ascend910", "perNode": 2, "podsPer": "server"})
    apply(ztj_crd, namespace, body)
    stored = get(ztj_crd, namespace, "zootrainingjob", "srv2")
    assert stored is not None and stored["spec"]["device"]["podsPer"] == "server"
    # The dynamic launch (msrun style) runs in server mode too.
    dynamic = cpu_job(
        "srv3", replicas=4, launch="dynamic", device={"type": "Ascend910", "perNode": 2, "podsPer": "server"}
    )
    apply(ztj_crd, namespace, dynamic)
    stored = get(ztj_crd, namespace, "zootrainingjob", "srv3")
    assert stored is not None and stored["spec"]["launch"] == "dynamic"


@pytest.mark.parametrize(("body", "message"), BAD, ids=[b["metadata"]["name"] for b, _ in BAD])
def test_bad_specs_are_refused_naming_the_field(
    ztj_crd: Any, namespace: str, body: dict[str, Any], message: str
) -> None:
    out = apply(ztj_crd, namespace, body, check=False)
    assert out.returncode != 0, f"{body['metadata']['name']} was accepted"
    assert message in out.stderr
    assert get(ztj_crd, namespace, "ztj", body["metadata"]["name"]) is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("trainPath", "/etc/passwd", "must be a relative path inside the volume"),
        ("evalPath", "val/../../secret", "must not contain '..' components"),
        ("volume", {"emptyDir": {}, "hostPath": {"path": "/data"}}, "spec.dataset.volume"),
    ],
)
def test_dataset_fields_are_checked(
    ztj_crd: Any, namespace: str, field: str, value: Any, message: str
) -> None:
    body = cpu_job("ds")
    body["spec"]["dataset"] = copy.deepcopy(body["spec"]["dataset"]) | {field: value}
    out = apply(ztj_crd, namespace, body, check=False)
    assert out.returncode != 0 and message in out.stderr
    assert f"spec.dataset.{field}" in out.stderr


@pytest.mark.parametrize(
    ("checkpoint", "message"),
    [
        ({"claimName": "ckpt", "hostPath": "/var/zoo"}, "set at most one of claimName, hostPath and volume"),
        (
            {"hostPath": "/var/zoo", "volume": {"emptyDir": {}}},
            "set at most one of claimName, hostPath and volume",
        ),
        ({"hostPath": "var/zoo"}, "spec.checkpoint.hostPath"),
        ({"claimName": "ckpt", "keep": -1}, "spec.checkpoint.keep"),
        ({"claimName": "ckpt", "stopGracePeriodSeconds": 0}, "spec.checkpoint.stopGracePeriodSeconds"),
    ],
)
def test_checkpoint_storage_is_checked(
    ztj_crd: Any, namespace: str, checkpoint: dict[str, Any], message: str
) -> None:
    out = apply(ztj_crd, namespace, cpu_job("ckpt", checkpoint=checkpoint), check=False)
    assert out.returncode != 0 and message in out.stderr, out.stderr
    good = cpu_job("ckpt-ok", checkpoint={"claimName": "ckpt", "keep": 3, "stopGracePeriodSeconds": 300})
    apply(ztj_crd, namespace, good)
    stored = get(ztj_crd, namespace, "ztj", "ckpt-ok")
    assert stored is not None and stored["spec"]["checkpoint"]["claimName"] == "ckpt"
