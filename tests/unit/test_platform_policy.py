"""The platform policy (issue 11): what a job's creator may put into the operator's pods, checked before any pod
exists, with safe defaults; and the pods' own security context (Pod Security `restricted`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from operator_jobs import ascend_job, job

from zoo_operator import render, settings
from zoo_operator.settings import Settings
from zoo_operator.spec import InvalidSpec, parse

DEFAULT = Settings()


def refused(body: dict[str, Any], cfg: Settings = DEFAULT) -> str:
    with pytest.raises(InvalidSpec) as info:
        parse(body, cfg)
    return str(info.value)


def template(**extra: Any) -> dict[str, Any]:
    return job(podTemplate=extra)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            template(
                volumes=[{"name": "root", "hostPath": {"path": "/"}}],
                volumeMounts=[{"name": "root", "mountPath": "/host"}],
            ),
            "spec.podTemplate.volumes[0].hostPath: hostPath volumes in podTemplate are not allowed",
        ),
        (
            template(volumes=[{"name": "s", "secret": {"secretName": "db"}}]),
            "spec.podTemplate.volumes[0].secret: Secret and projected",
        ),
        (
            template(
                volumes=[{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]
            ),
            "spec.podTemplate.volumes[0].projected: Secret and projected",
        ),
        (
            template(volumes=[{"name": "n", "nfs": {"server": "x", "path": "/"}}]),
            "spec.podTemplate.volumes[0].nfs: volume kind not allowed",
        ),
        (
            template(env=[{"name": "LD_PRELOAD", "value": "/tmp/evil.so"}]),
            "spec.podTemplate.env[0].name: LD_PRELOAD",
        ),
        (
            template(env=[{"name": "PATH", "value": "/tmp"}]),
            "spec.podTemplate.env[0].name: PATH may not be set",
        ),
        (
            template(env=[{"name": "RANK_SIZE", "value": "9"}]),
            "spec.podTemplate.env[0].name: RANK_SIZE is set by",
        ),
        (
            template(env=[{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]),
            "spec.podTemplate.env[0].valueFrom.secretKeyRef: PW: Secret references are not allowed",
        ),
        (
            template(tolerations=[{"operator": "Exists"}]),
            "spec.podTemplate.tolerations[0]: a toleration without a key",
        ),
        (
            template(tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]),
            "spec.podTemplate.tolerations[0].key: node-role.kubernetes.io/control-plane is a Kubernetes taint",
        ),
        (
            job(scheduling={"priorityClassName": "system-node-critical"}),
            "spec.scheduling.priorityClassName: system-node-critical is reserved",
        ),
        (
            job(dataset={"volume": {"hostPath": {"path": "/etc"}}, "trainPath": "t", "numClasses": 2}),
            "spec.dataset.volume.hostPath.path: /etc is a system directory",
        ),
        (
            job(dataset={"volume": {"hostPath": {"path": "/data/../"}}, "trainPath": "t", "numClasses": 2}),
            "spec.dataset.volume.hostPath.path: / is a system directory",
        ),
        (
            job(checkpoint={"volume": {"hostPath": {"path": "/var/lib/kubelet/pods"}}}),
            "spec.checkpoint.volume.hostPath.path: /var/lib/kubelet/pods is a system directory",
        ),
        (
            template(volumes=[{"name": "zoo-data", "emptyDir": {}}]),
            "spec.podTemplate.volumes[0].name: zoo-data",
        ),
        (
            template(volumeMounts=[{"name": "x", "mountPath": "/zoo/data/train"}]),
            "spec.podTemplate.volumeMounts[0].mountPath: /zoo/data/train overlaps",
        ),
    ],
)
def test_default_policy_refuses_naming_the_field(body: dict[str, Any], expected: str) -> None:
    assert expected in refused(body)


def test_messages_never_show_an_env_value() -> None:
    secret_looking = "hunter2-very-secret"
    message = refused(
        template(
            env=[
                {"name": "LD_PRELOAD", "value": secret_looking},
                {"name": "X", "valueFrom": {"secretKeyRef": {"name": secret_looking, "key": "k"}}},
            ]
        )
    )
    assert secret_looking not in message


def test_default_policy_allows_ordinary_jobs() -> None:
    ok = template(
        volumes=[
            {"name": "shm", "emptyDir": {"medium": "Memory"}},
            {"name": "c", "configMap": {"name": "cfg"}},
        ],
        volumeMounts=[{"name": "shm", "mountPath": "/dev/shm"}],
        env=[{"name": "OMP_NUM_THREADS", "value": "4"}],
        tolerations=[{"key": "huawei.com/Ascend910", "operator": "Exists", "effect": "NoSchedule"}],
    )
    parse(ok, DEFAULT)
    parse(job(scheduling={"priorityClassName": "team-high"}), DEFAULT)


def test_platform_team_settings_from_the_environment() -> None:
    cfg = settings.from_env(
        {
            "ZOO_POLICY_HOST_PATH_PREFIXES": "/data,/scratch",
            "ZOO_POLICY_ALLOW_SECRETS": "true",
            "ZOO_POLICY_VOLUME_KINDS": "emptyDir,secret,hostPath",
            "ZOO_POLICY_TOLERATION_KEYS": "pool",
            "ZOO_POLICY_PRIORITY_CLASSES": "low,high",
            "ZOO_POLICY_DENIED_ENV": "FOO",
        }
    )
    assert cfg.policy_host_path_prefixes == ("/data", "/scratch") and cfg.policy_allow_secrets
    parse(
        job(dataset={"volume": {"hostPath": {"path": "/data/imagenet"}}, "trainPath": "t", "numClasses": 2}),
        cfg,
    )
    assert "outside the hostPath prefixes the platform policy allows (/data, /scratch)" in refused(
        job(dataset={"volume": {"hostPath": {"path": "/home/me"}}, "trainPath": "t", "numClasses": 2}), cfg
    )
    assert "outside" in refused(
        job(dataset={"volume": {"hostPath": {"path": "/dataset"}}, "trainPath": "t", "numClasses": 2}), cfg
    )
    parse(
        template(
            volumes=[
                {"name": "s", "secret": {"secretName": "x"}},
                {"name": "h", "hostPath": {"path": "/scratch/a"}},
            ],
            env=[
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
                {"name": "PATH", "value": "/x"},
            ],
            tolerations=[{"key": "pool"}],
        ),
        cfg,
    )
    assert "FOO may not be set" in refused(template(env=[{"name": "FOO", "value": "1"}]), cfg)
    assert "tolerations[0].key: other is not allowed" in refused(
        template(tolerations=[{"key": "other"}]), cfg
    )
    assert "team-high is not allowed" in refused(job(scheduling={"priorityClassName": "team-high"}), cfg)


def test_no_host_path_at_all_when_the_prefixes_are_empty() -> None:
    cfg = settings.from_env({"ZOO_POLICY_HOST_PATH_PREFIXES": ""})
    assert cfg.policy_host_path_prefixes == ()
    assert "spec.dataset.volume.hostPath.path: hostPath volumes are not allowed" in refused(job(), cfg)


def test_bad_policy_settings_name_the_variable() -> None:
    with pytest.raises(ValueError, match="ZOO_POLICY_HOST_PATH_PREFIXES"):
        settings.from_env({"ZOO_POLICY_HOST_PATH_PREFIXES": "data"})
    with pytest.raises(ValueError, match="ZOO_POLICY_ALLOW_SECRETS"):
        settings.from_env({"ZOO_POLICY_ALLOW_SECRETS": "maybe"})
    with pytest.raises(ValueError, match="ZOO_POD_SUPPLEMENTAL_GROUPS"):
        settings.from_env({"ZOO_POD_SUPPLEMENTAL_GROUPS": "a,b"})


def test_pods_meet_pod_security_restricted() -> None:
    """The `restricted` profile's rules (kubernetes.io/docs/concepts/security/pod-security-standards)."""
    for pod in render.pods(parse(job(), DEFAULT), 0) + render.pods(parse(ascend_job(replicas=2), DEFAULT), 0):
        spec = pod["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert (
            spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 1000
        )
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
            assert not ctx.get("privileged") and "add" not in ctx["capabilities"]
        assert "hostNetwork" not in spec and "hostPID" not in spec and "hostIPC" not in spec


def test_ids_are_configurable_for_the_ascend_driver_group() -> None:
    cfg = settings.from_env(
        {
            "ZOO_POD_RUN_AS_USER": "2000",
            "ZOO_POD_RUN_AS_GROUP": "1000",
            "ZOO_POD_FS_GROUP": "0",
            "ZOO_POD_SUPPLEMENTAL_GROUPS": "1001,1002",
        }
    )
    ctx = render.pod(parse(ascend_job(replicas=2), cfg), 0, 0)["spec"]["securityContext"]
    assert ctx["runAsUser"] == 2000 and ctx["runAsGroup"] == 1000 and "fsGroup" not in ctx
    assert ctx["supplementalGroups"] == [1001, 1002]
    root = dataclasses.replace(parse(job(), DEFAULT), run_as_user=0)
    assert "runAsNonRoot" not in render.pod(root, 0, 0)["spec"]["securityContext"]
