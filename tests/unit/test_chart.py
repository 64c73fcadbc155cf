"""The Helm chart rendered with helm itself: lint, RBAC verbs, env mapping, security, metrics, CRD toggle."""

from __future__ import annotations

import dataclasses
import re
import tomllib

import pytest
import yaml
from chart_render import CHART, REPO, container, env_of, find, helm, one, rules_as_set, template

# Exactly the operator's needs in a watched namespace (docs/contracts.md; zoo_operator's API calls).
JOB_RULES = (
    {("modelzoo.io", "zootrainingjobs", v) for v in ("get", "list", "watch", "patch", "update", "delete")}
    | {("modelzoo.io", "zootrainingjobs/status", v) for v in ("get", "patch", "update")}
    | {("", "pods", v) for v in ("get", "list", "watch", "create", "delete", "patch")}
    | {("", "pods/log", "get")}
    | {
        ("", res, v)
        for res in ("services", "configmaps")
        for v in ("get", "list", "watch", "create", "delete", "patch")
    }
    | {(g, "events", v) for g in ("", "events.k8s.io") for v in ("create", "patch")}
    | {("", "events", "list")}  # why a pod cannot start (FailedMount), issue 11
    | {("kueue.x-k8s.io", "localqueues", "get")}  # spec.scheduling.queue exists (issue 24, QueueFound)
    # Each job's NetworkPolicy (issue 24; networkPolicy.enabled, on by default).
    | {
        ("networking.k8s.io", "networkpolicies", v)
        for v in ("get", "list", "watch", "create", "delete", "patch")
    }
)
GANG_RULES = {
    (group, "podgroups", v)
    for v in ("get", "list", "watch", "create", "delete", "patch")
    for group in ("scheduling.volcano.sh", "scheduling.k8s.io")
}
DISCOVERY_RULES = {
    ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")
} | {("", "namespaces", v) for v in ("list", "watch")}

SCENARIOS = {
    "default": {},
    "watch-namespaces": {"watchNamespaces": "{team-a,team-b}"},
    "gang": {"gang.enabled": "true"},
    "metrics": {"metrics.enabled": "true", "metrics.port": "9191"},
    "no-crds": {"crds.enabled": "false"},
}


def app_version() -> str:
    """The chart's appVersion (Chart.yaml)."""
    return yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]


@pytest.mark.parametrize("values", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_lint_strict(values):
    args = [a for k, v in values.items() for a in ("--set", f"{k}={v}")]
    out = helm("lint", "--strict", str(CHART), *args).stdout
    assert "0 chart(s) failed" in out


def test_app_version_is_the_project_version():
    project = tomllib.loads((REPO / "operator" / "pyproject.toml").read_text())["project"]["version"]
    assert app_version() == project


def test_default_objects():
    objects = template()
    kinds = sorted(
        (o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] != "CustomResourceDefinition"
    )
    assert kinds == [
        ("ClusterRole", "zoo-operator"),
        ("ClusterRole", "zoo-operator-discovery"),
        ("ClusterRole", "zoo-operator-edit"),
        ("ClusterRole", "zoo-operator-faults"),
        ("ClusterRole", "zoo-operator-view"),
        ("ClusterRoleBinding", "zoo-operator"),
        ("ClusterRoleBinding", "zoo-operator-discovery"),
        ("ClusterRoleBinding", "zoo-operator-faults"),
        ("Deployment", "zoo-operator"),
        ("NetworkPolicy", "zoo-operator"),
        ("Role", "zoo-operator-deviceinfo"),
        ("Role", "zoo-operator-leader"),
        ("RoleBinding", "zoo-operator-deviceinfo"),
        ("RoleBinding", "zoo-operator-leader"),
        ("ServiceAccount", "zoo-operator"),
    ]


def test_fault_detection_rbac_is_read_only():
    """Issue 23: the operator reads nodes and the device plugin's ConfigMaps in kube-system, nothing more; issue
    25: by watches (nodewatch.py), so list and watch besides get, and no write."""
    objects = template()
    assert one(objects, "ClusterRole", "zoo-operator-faults")["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}
    ]
    role = one(objects, "Role", "zoo-operator-deviceinfo")
    assert role["metadata"]["namespace"] == "kube-system"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
    ]
    binding = one(objects, "RoleBinding", "zoo-operator-deviceinfo")
    assert binding["metadata"]["namespace"] == "kube-system"
    assert binding["roleRef"]["name"] == "zoo-operator-deviceinfo"


def test_one_resource_kind_per_template_file():
    objects = template({"watchNamespaces": "{a,b}", "metrics.enabled": "true"})
    kinds_by_file: dict[str, set[str]] = {}
    for obj in objects:
        kinds_by_file.setdefault(obj["_source"], set()).add(obj["kind"])
    assert all(len(kinds) == 1 for kinds in kinds_by_file.values()), kinds_by_file


def test_cluster_wide_rbac_verbs_exactly():
    objects = template()
    assert rules_as_set(one(objects, "ClusterRole", "zoo-operator")["rules"]) == JOB_RULES
    assert rules_as_set(one(objects, "ClusterRole", "zoo-operator-discovery")["rules"]) == DISCOVERY_RULES
    binding = one(objects, "ClusterRoleBinding", "zoo-operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "zoo-operator",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "zoo-operator", "namespace": "zoo-system"}
    ]
    # The namespaced grants: the leader-election Lease, in the release namespace only, and (issue 23,
    # test_fault_detection_rbac_is_read_only) the device plugin's ConfigMaps in kube-system.
    (role,) = [r for r in find(objects, "Role") if r["metadata"]["namespace"] != "kube-system"]
    assert role["metadata"] == {**role["metadata"], "name": "zoo-operator-leader", "namespace": "zoo-system"}
    assert rules_as_set(role["rules"]) == {
        ("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update")
    }
    (leader_binding,) = [
        b for b in find(objects, "RoleBinding") if b["metadata"]["namespace"] != "kube-system"
    ]
    assert leader_binding["roleRef"]["name"] == "zoo-operator-leader"


def test_watch_namespaces_uses_a_role_per_namespace():
    objects = template(SCENARIOS["watch-namespaces"])
    fixed = ("zoo-operator-leader", "zoo-operator-deviceinfo")  # not per watched namespace
    roles = [r for r in find(objects, "Role") if r["metadata"]["name"] not in fixed]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert all(rules_as_set(r["rules"]) == JOB_RULES for r in roles)
    bindings = [b for b in find(objects, "RoleBinding") if b["metadata"]["name"] not in fixed]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for b in bindings:
        assert b["roleRef"]["kind"] == "Role" and b["roleRef"]["name"] == "zoo-operator"
        assert b["subjects"] == [
            {"kind": "ServiceAccount", "name": "zoo-operator", "namespace": "zoo-system"}
        ]
    # Nothing namespaced is granted to the operator cluster-wide; only kopf's discovery and the nodes' read
    # (issue 23) stay ClusterRoles (besides the roles aggregated into the users' built-in edit/view roles).
    assert sorted(r["metadata"]["name"] for r in find(objects, "ClusterRole")) == [
        "zoo-operator-discovery",
        "zoo-operator-edit",
        "zoo-operator-faults",
        "zoo-operator-view",
    ]
    assert env_of(objects)["ZOO_WATCH_NAMESPACES"] == "team-a,team-b"


@pytest.mark.parametrize("watch", [None, "{team-a}"])
def test_gang_adds_podgroups_only_when_enabled(watch):
    base = {"watchNamespaces": watch} if watch else {}
    kind = "Role" if watch else "ClusterRole"
    off = rules_as_set(find(template(base), kind, "zoo-operator")[0]["rules"])
    on = rules_as_set(find(template({**base, "gang.enabled": "true"}), kind, "zoo-operator")[0]["rules"])
    assert not off & GANG_RULES
    assert on == JOB_RULES | GANG_RULES


DRA_RULES = {
    ("resource.k8s.io", "resourceclaimtemplates", v)
    for v in ("get", "list", "watch", "create", "delete", "patch")
}


@pytest.mark.parametrize("watch", [None, "{team-a}"])
def test_dra_adds_claim_templates_and_the_device_class_only_when_enabled(watch):
    """Issue 21: ascend.dra.enabled grants ResourceClaimTemplates and hands the operator the DeviceClass."""
    from zoo_operator import settings

    base = {"watchNamespaces": watch} if watch else {}
    kind = "Role" if watch else "ClusterRole"
    off_objects = template(base)
    off = rules_as_set(find(off_objects, kind, "zoo-operator")[0]["rules"])
    on_objects = template({**base, "ascend.dra.enabled": "true"})
    on = rules_as_set(find(on_objects, kind, "zoo-operator")[0]["rules"])
    assert not off & DRA_RULES and on == off | DRA_RULES
    assert env_of(off_objects)["ZOO_ASCEND_DRA_DEVICE_CLASS"] == ""
    assert settings.from_env(env_of(on_objects)).ascend_dra_device_class == "npu.huawei.com"
    other = template({**base, "ascend.dra.enabled": "true", "ascend.dra.deviceClassName": "npu.example.com"})
    assert env_of(other)["ZOO_ASCEND_DRA_DEVICE_CLASS"] == "npu.example.com"


def test_env_maps_values_onto_operator_settings():
    values = {
        "statusIntervalSeconds": "17",
        "logTailLines": "33",
        "images.workload.cpu": "registry.local/cpu:1",
        "images.workload.ascend": "registry.local/ascend:2",
        "images.workload.ascendChips.chip910b": "registry.local/ascend-910b:3",
        "ascend.acceleratorTypes.chip910b": "card-910b-2",
        "ascend.driverMounts": "false",
        "health.port": "8181",
    }
    env = env_of(template(values))
    version = app_version()
    assert env == {
        "ZOO_WATCH_NAMESPACES": "",
        "ZOO_STATUS_INTERVAL_SECONDS": "17",
        "ZOO_LOG_TAIL_LINES": "33",
        "ZOO_IMAGE_CPU": "registry.local/cpu:1",
        "ZOO_IMAGE_GPU": f"zoo-operator/workload-gpu:{version}",
        "ZOO_IMAGE_ASCEND": "registry.local/ascend:2",
        "ZOO_IMAGE_ASCEND_910": "",
        "ZOO_IMAGE_ASCEND_910B": "registry.local/ascend-910b:3",
        "ZOO_IMAGE_ASCEND_A3": "",
        "ZOO_ASCEND_ACCELERATOR_TYPE_910": "",
        "ZOO_ASCEND_ACCELERATOR_TYPE_910B": "card-910b-2",
        "ZOO_ASCEND_ACCELERATOR_TYPE_A3": "",
        "ZOO_ASCEND_CHIP": "910B",
        "ZOO_ASCEND_HOST_ARCH": "huawei-arm",
        "ZOO_ASCEND_DRIVER_MOUNTS": "false",
        "ZOO_ASCEND_SHM_SIZE": "",
        "ZOO_ASCEND_VOLCANO": "false",
        "ZOO_ASCEND_DRA_DEVICE_CLASS": "",
        "ZOO_GANG_BACKEND": "volcano",
        "ZOO_METRICS_PORT": "0",
        "ZOO_HEALTH_PORT": "8181",
        "ZOO_LISTEN_HOST": "fieldRef:status.podIP",
        "ZOO_NETWORK_POLICY": "true",
        "ZOO_NETWORK_POLICY_RESTRICT_EGRESS": "false",
        "ZOO_POD_RUN_AS_USER": "1000",
        "ZOO_POD_RUN_AS_GROUP": "1000",
        "ZOO_POD_FS_GROUP": "1000",
        "ZOO_POD_SUPPLEMENTAL_GROUPS": "",
        "ZOO_POLICY_HOST_PATH_PREFIXES": "/",
        "ZOO_POLICY_VOLUME_KINDS": "emptyDir,configMap,persistentVolumeClaim,downwardAPI,ephemeral",
        "ZOO_POLICY_ALLOW_SECRETS": "false",
        "ZOO_POLICY_TOLERATION_KEYS": "",
        "ZOO_POLICY_PRIORITY_CLASSES": "",
        "ZOO_POLICY_DENIED_ENV": "LD_PRELOAD,LD_LIBRARY_PATH,LD_AUDIT,PATH,PYTHONPATH,PYTHONHOME,PYTHONSTARTUP,"
        "PYTHONINSPECT,BASH_ENV,ENV",
        "ZOO_LEADER_ELECTION_NAMESPACE": "fieldRef:metadata.namespace",
        "ZOO_POD_NAME": "fieldRef:metadata.name",
    }


def test_chart_policy_values_reach_the_operator_settings():
    """Issue 11: the platform team's policy in values -> env -> Settings, the same numbers end to end."""
    from zoo_operator import settings

    env = env_of(
        template(
            {
                "policy.hostPathPrefixes": "{/data,/scratch}",
                "policy.allowSecrets": "true",
                "policy.priorityClasses": "{low}",
                "workloadSecurity.runAsUser": "2000",
                "workloadSecurity.supplementalGroups": "{1001}",
            }
        )
    )
    cfg = settings.from_env({k: v for k, v in env.items() if not v.startswith("fieldRef:")})
    assert cfg.policy_host_path_prefixes == ("/data", "/scratch") and cfg.policy_allow_secrets
    assert cfg.policy_priority_classes == ("low",) and cfg.pod_run_as_user == 2000
    assert cfg.pod_supplemental_groups == (1001,)
    assert settings.from_env(
        {k: v for k, v in env_of(template()).items() if not v.startswith("fieldRef:")}
    ) == dataclasses.replace(
        settings.Settings(), image_cpu=cfg.image_cpu, image_gpu=cfg.image_gpu, image_ascend=cfg.image_ascend
    )


def test_every_env_var_is_a_documented_operator_setting():
    contracts = (REPO / "docs" / "contracts.md").read_text()
    section = contracts.split("## Operator settings", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(ZOO_[A-Z0-9_]+)`", section))
    assert set(env_of(template())) == documented
    # /healthz and /metrics listen on the pod's own IP, never on every address of a shared network namespace.
    assert env_of(template())["ZOO_LISTEN_HOST"] == "fieldRef:status.podIP"


def test_deployment_shape_and_probe():
    objects = template({"health.port": "8181"})
    deployment = one(objects, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert one(template({"replicas": "2"}), "Deployment")["spec"]["replicas"] == 2
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["template"]["spec"]["serviceAccountName"] == "zoo-operator"
    c = container(objects)
    assert c["image"] == f"zoo-operator/operator:{app_version()}"
    assert c["command"] == ["zoo-operator", "run"]
    assert {"name": "health", "containerPort": 8181, "protocol": "TCP"} in c["ports"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_image_tag_override():
    c = container(
        template(
            {
                "image.repository": "registry.local/zoo/operator",
                "image.tag": "dev",
                "image.pullPolicy": "Always",
            }
        )
    )
    assert c["image"] == "registry.local/zoo/operator:dev"
    assert c["imagePullPolicy"] == "Always"


def test_security_context_is_restricted():
    objects = template()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(objects)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    tmp = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert tmp == [{"name": "tmp", "emptyDir": {}}]
    assert {"name": "tmp", "mountPath": "/tmp"} in container(objects)["volumeMounts"]


def test_metrics_service_only_when_enabled():
    assert not find(template(), "Service")
    objects = template(SCENARIOS["metrics"])
    service = one(objects, "Service", "zoo-operator-metrics")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9191, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert {"name": "metrics", "containerPort": 9191, "protocol": "TCP"} in container(objects)["ports"]
    assert env_of(objects)["ZOO_METRICS_PORT"] == "9191"


def test_standard_labels_on_every_object():
    for obj in template(SCENARIOS["metrics"]):
        if obj["kind"] == "CustomResourceDefinition":
            continue
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "zoo-operator"
        assert labels["app.kubernetes.io/instance"] == "zoo-operator"
        assert labels["app.kubernetes.io/version"] == app_version()
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "zoo-operator-0.1.0"


def test_fullname_follows_release_and_overrides():
    objects = yaml.safe_load_all(helm("template", "prod", str(CHART), "-n", "ops").stdout)
    names = {o["metadata"]["name"] for o in objects if o and o["kind"] == "Deployment"}
    assert names == {"prod-zoo-operator"}
    assert one(template({"fullnameOverride": "zoo"}), "Deployment")["metadata"]["name"] == "zoo"


def test_notes_tell_what_to_do_next():
    out = helm("install", "zoo-operator", str(CHART), "-n", "zoo-system", "--dry-run=client").stdout
    notes = out.split("NOTES:", 1)[1]
    assert "kubectl explain ztj.spec" in notes  # the chart ships no example files; NOTES point at none
    assert "kubectl get ztj" in notes
    assert "rollout status deployment/zoo-operator" in notes


def test_crd_is_a_kept_template_behind_the_toggle():
    crd = one(template(), "CustomResourceDefinition")
    assert crd["metadata"]["name"] == "zootrainingjobs.modelzoo.io"
    # keep: `helm uninstall` must not delete the CRD, which would delete every user's ZooTrainingJob.
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["_source"] == "zoo-operator/templates/crd.yaml"  # a template (upgraded), not crds/ (never)
    assert not (CHART / "crds").exists()
    assert not find(template(SCENARIOS["no-crds"]), "CustomResourceDefinition")


def test_chart_crd_equals_the_manifests_crd():
    chart_crd = one(template(), "CustomResourceDefinition")
    manifest_crd = yaml.safe_load((REPO / "manifests" / "base" / "crd.yaml").read_text())
    assert chart_crd["spec"] == manifest_crd["spec"]
