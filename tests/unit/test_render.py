"""Builders of the job's objects: names, labels, owners, environment, volumes, scheduling (contracts.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from operator_jobs import ascend_job, job

from zoo_operator import conditions as c
from zoo_operator import dryrun, render, spec
from zoo_operator.settings import VERSION as SETTINGS_VERSION
from zoo_operator.settings import Settings
from zoo_workloads import contract

SETTINGS = Settings(image_cpu="zoo-operator/workload-cpu:t", image_ascend="zoo-operator/workload-ascend:t")
GOLDEN = Path(__file__).parent / "golden"


def parse(body: dict) -> spec.JobSpec:
    return spec.parse(body, SETTINGS)


def env_of(pod: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


# One image per chip, as a platform team configures them (chart values images.workload.ascendChips).
CHIP_SETTINGS = Settings(
    ascend_images={
        "910": "registry.local/zoo/workload-ascend:t-910",
        "910B": "registry.local/zoo/workload-ascend:t-910b",
        "A3": "registry.local/zoo/workload-ascend:t-a3",
    },
    ascend_shm_size="32Gi",
)


def golden_job(chip: str) -> spec.JobSpec:
    """Worker 9 of a 16-device job with perNode 8 (server group 1) on one chip generation."""
    return spec.parse(
        ascend_job(replicas=16, device={"type": "Ascend910", "chip": chip, "perNode": 8}), CHIP_SETTINGS
    )


@pytest.mark.parametrize("chip", ["910", "910B", "A3"])
def test_golden_ascend_worker_pod_per_chip(chip: str) -> None:
    pod = render.pod(golden_job(chip), 9, attempt=0)
    golden = yaml.safe_load((GOLDEN / f"pod_ascend_{chip.lower()}_worker_9.yaml").read_text())
    assert pod == golden


def test_ascend_pod_parts_per_chip() -> None:
    accel = {}
    for chip in ("910", "910B", "A3"):
        pod = render.pod(golden_job(chip), 9, attempt=0)
        container = pod["spec"]["containers"][0]
        assert container["image"].endswith(chip.lower())  # the CANN base differs per chip
        accel[chip] = pod["spec"]["nodeSelector"]["accelerator-type"]
        assert pod["spec"]["nodeSelector"]["host-arch"] == "huawei-arm"
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/usr/local/Ascend/driver"]["readOnly"] and mounts["/usr/local/bin/npu-smi"]["readOnly"]
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["zoo-dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}
        assert env_of(pod)["HCCL_CONNECT_TIMEOUT"] == "600"
    # ascend-for-volcano dispatches on these (internal/npu/factory.go); a wrong one picks the wrong handler.
    assert accel == {"910": "module", "910B": "module-910b-8", "A3": "module-a3-16-super-pod"}
    assert golden_job("A3").rank_table_version == "1.2" and golden_job("910B").rank_table_version == "1.0"


def test_ascend_settings_turn_parts_off_and_the_job_selector_wins() -> None:
    settings = Settings(
        ascend_driver_mounts=False, ascend_host_arch="", ascend_accelerator_types={"910B": "none"}
    )
    js = spec.parse(
        ascend_job(podTemplate={"nodeSelector": {"host-arch": "huawei-x86", "pool": "a"}}), settings
    )
    pod = render.pod(js, 0, 0)
    assert pod["spec"]["nodeSelector"] == {"host-arch": "huawei-x86", "pool": "a"}
    assert [v["name"] for v in pod["spec"]["volumes"] if v["name"].startswith("zoo-")] == [
        "zoo-data",
        "zoo-checkpoint",
        "zoo-tmp",
        "zoo-home",
        "zoo-ranktable",
        "zoo-dshm",
    ]
    assert js.image == f"zoo-operator/workload-ascend:{SETTINGS_VERSION}-910b"


def test_per_node_places_one_server_group_per_node() -> None:
    js = golden_job("910B")
    pods = [render.pod(js, i, 0) for i in range(16)]
    groups = [p["metadata"]["labels"][c.LABEL_SERVER_GROUP] for p in pods]
    assert groups == ["0"] * 8 + ["1"] * 8
    aff = pods[3]["spec"]["affinity"]
    (same,) = aff["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (other,) = aff["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert same["topologyKey"] == other["topologyKey"] == "kubernetes.io/hostname"

    def selects(selector: dict, labels: dict[str, str]) -> bool:
        ok = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
        for expr in selector.get("matchExpressions", []):
            value = labels.get(expr["key"])
            ok = (
                ok
                and {
                    "Exists": value is not None,
                    "NotIn": value not in expr.get("values", []),
                    "In": value in expr.get("values", []),
                }[expr["operator"]]
            )
        return ok

    labels = [p["metadata"]["labels"] for p in pods]
    assert [selects(same["labelSelector"], lab) for lab in labels] == [True] * 8 + [False] * 8
    assert [selects(other["labelSelector"], lab) for lab in labels] == [False] * 8 + [True] * 8
    other_job = {**labels[0], c.LABEL_JOB: "someone-else"}
    assert not selects(other["labelSelector"], other_job)
    # No perNode: no group label, no affinity.
    plain = render.pod(parse(ascend_job()), 0, 0)
    assert c.LABEL_SERVER_GROUP not in plain["metadata"]["labels"] and "affinity" not in plain["spec"]


def test_every_object_is_owned_and_labelled() -> None:
    js = parse(job(scheduling={"gang": True}))
    objs = render.all_objects(js)
    assert [o["kind"] for o in objs] == ["Service", "ConfigMap", "PodGroup", "Pod", "Pod", "Pod"]
    for obj in objs:
        meta = obj["metadata"]
        assert meta["namespace"] == "ns1"
        assert meta["labels"][c.LABEL_JOB] == "demo" and meta["labels"][c.LABEL_MANAGED_BY] == "zoo-operator"
        owner = meta["ownerReferences"][0]
        assert owner["controller"] is True and owner["uid"] == "uid-1" and owner["kind"] == "ZooTrainingJob"


def test_pod_names_hostnames_and_labels() -> None:
    js = parse(job())
    pods = render.pods(js, attempt=2)
    assert [p["metadata"]["name"] for p in pods] == ["demo-sched", "demo-worker-0", "demo-worker-1"]
    for pod in pods:
        assert pod["spec"]["hostname"] == pod["metadata"]["name"] and pod["spec"]["subdomain"] == "demo"
        assert pod["spec"]["restartPolicy"] == "Never"
        assert pod["metadata"]["annotations"][c.ANNOTATION_ATTEMPT] == "2"
    assert (
        pods[0]["metadata"]["labels"][c.LABEL_ROLE] == "scheduler"
        and c.LABEL_RANK not in pods[0]["metadata"]["labels"]
    )
    assert pods[2]["metadata"]["labels"][c.LABEL_RANK] == "1"


def test_dynamic_launch_environment() -> None:
    js = parse(job())
    sched, worker = render.pod(js, None, 0), render.pod(js, 1, 0)
    host = "demo-sched.demo.ns1.svc.cluster.local"
    assert env_of(sched)["MS_ROLE"] == "MS_SCHED" and env_of(sched)["MS_NODE_ID"] == "sched"
    w = env_of(worker)
    assert (w["MS_ROLE"], w["MS_SCHED_HOST"], w["MS_SCHED_PORT"], w["MS_WORKER_NUM"], w["MS_NODE_ID"]) == (
        "MS_WORKER",
        host,
        "8118",
        "2",
        "1",
    )
    assert (
        w["RANK_SIZE"] == "2"
        and w["ZOO_MODEL"] == "resnet50_bam"
        and w["ZOO_TERMINATION_LOG"] == ("/dev/termination-log")
    )
    assert w["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "RANK_TABLE_FILE" not in w
    # CPU: no device request, only the memory every rank gets (zoo_workloads.config.RANK_MEMORY).
    assert worker["spec"]["containers"][0]["resources"] == {
        "requests": {"memory": "1Gi"},
        "limits": {"memory": "8Gi"},
    }


def test_command_and_hyperparameters() -> None:
    js = parse(job(hyperparameters={"epochs": 2, "lr_mode": "cosine", "lr_max": 0.5}))
    cmd = render.command(js)
    assert cmd[:3] == ["zoo-launch", "--", "zoo-train"]
    assert cmd[cmd.index("--data-dir") + 1] == "/zoo/data/train"
    assert cmd[cmd.index("--eval-dir") + 1] == "/zoo/data/val"
    assert cmd[cmd.index("--num-classes") + 1] == "10"
    assert cmd[cmd.index("--output-dir") + 1] == "/zoo/checkpoint/ns1/demo-uid-1"
    assert cmd[cmd.index("--device") + 1] == "CPU"
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert sets == ["epochs=2", "lr_max=0.5", "lr_mode=cosine"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (3, "3"),
        (None, "null"),
        ([1, 1, 1, 1], "[1, 1, 1, 1]"),
        (0.001, "0.001"),
        ("poly", "poly"),
        ("0.5", '"0.5"'),
        ("yes", '"yes"'),
        ("", '""'),
    ],
)
def test_set_values_read_back_with_their_type(value: object, text: str) -> None:
    assert render.set_value(value) == text
    assert yaml.safe_load(text) == value


def test_device_resources_and_user_resources() -> None:
    js = parse(ascend_job(resources={"limits": {"memory": "8Gi"}, "requests": {"cpu": "2"}}))
    res = render.pod(js, 0, 0)["spec"]["containers"][0]["resources"]
    # A memory limit set alone caps the default request (16Gi on Ascend), so the pod stays valid.
    assert res == {
        "limits": {"memory": "8Gi", "huawei.com/Ascend910": 1},
        "requests": {"cpu": "2", "huawei.com/Ascend910": 1, "memory": "8Gi"},
    }


def test_ranktable_mount_is_a_directory_never_subpath() -> None:
    pod = render.pod(parse(ascend_job()), 0, 0)
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert (
        mounts["zoo-ranktable"]["mountPath"] == "/etc/zoo/ranktable"
        and "subPath" not in mounts["zoo-ranktable"]
    )
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["zoo-ranktable"]["configMap"]["name"] == "asc-ranktable"
    env = env_of(pod)
    assert env["RANK_TABLE_FILE"] == "/etc/zoo/ranktable/hccl.json"
    assert "ZOO_RANKS_FILE" not in env and pod["spec"]["containers"][0]["env"][
        9 + len(contract.SCRATCH_ENV)
    ] == {
        "name": "HOST_IP",
        "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}},
    }
    assert "MS_ROLE" not in env


def test_gang_and_queue() -> None:
    js = parse(job(scheduling={"gang": True, "queue": "team-a", "priorityClassName": "high"}))
    group = render.pod_group(js)
    assert group["apiVersion"] == "scheduling.volcano.sh/v1beta1" and group["spec"]["minMember"] == 3
    pod = render.pod(js, 0, 0)
    assert pod["spec"]["schedulerName"] == "volcano" and pod["spec"]["priorityClassName"] == "high"
    assert pod["metadata"]["annotations"][c.VOLCANO_GROUP_ANNOTATION] == "demo"
    assert pod["metadata"]["labels"][c.KUEUE_QUEUE_LABEL] == "team-a"
    assert pod["metadata"]["labels"][c.KUEUE_GROUP_LABEL] == "demo"
    assert pod["metadata"]["annotations"][c.KUEUE_GROUP_COUNT_ANNOTATION] == "3"


# The fields the published APIs define (json names): Volcano's volcano.sh/apis pkg/apis/scheduling/v1beta1
# PodGroupSpec, and k8s.io/api v0.36.3 scheduling/v1alpha2 PodGroupSpec / GangSchedulingPolicy / core/v1
# PodSchedulingGroup (read from the Go module cache when this was written).
VOLCANO_POD_GROUP_SPEC = {
    "minMember",
    "minTaskMember",
    "queue",
    "priorityClassName",
    "minResources",
    "networkTopology",
    "subGroupPolicy",
}
NATIVE_POD_GROUP_SPEC = {
    "podGroupTemplateRef",
    "schedulingPolicy",
    "schedulingConstraints",
    "resourceClaims",
    "disruptionMode",
    "priorityClassName",
    "priority",
}


def test_volcano_pod_group_uses_only_volcanos_fields() -> None:
    group = render.pod_group(parse(job(scheduling={"gang": True, "queue": "q", "priorityClassName": "p"})))
    assert set(group["spec"]) <= VOLCANO_POD_GROUP_SPEC and group["kind"] == "PodGroup"


def test_kubernetes_gang_backend() -> None:
    js = parse(job(scheduling={"gang": True, "gangBackend": "kubernetes", "priorityClassName": "high"}))
    group = render.pod_group(js)
    assert group["apiVersion"] == "scheduling.k8s.io/v1alpha2" and group["kind"] == "PodGroup"
    assert group["metadata"]["name"] == "demo" and set(group["spec"]) <= NATIVE_POD_GROUP_SPEC
    assert group["spec"]["schedulingPolicy"] == {"gang": {"minCount": 3}}  # the scheduler pod counts too
    for index in (None, 0, 1):
        pod = render.pod(js, index, 0)
        assert pod["spec"]["schedulingGroup"] == {"podGroupName": "demo"}
        assert (
            "schedulerName" not in pod["spec"]
            and c.VOLCANO_GROUP_ANNOTATION not in pod["metadata"]["annotations"]
        )
    assert "feature gates GenericWorkload" in render.gang_missing_hint(js)
    assert "install Volcano" in render.gang_missing_hint(parse(job(scheduling={"gang": True})))
    assert "leave it unset" in str(
        pytest.raises(
            spec.InvalidSpec,
            parse,
            job(scheduling={"gang": True, "gangBackend": "kubernetes", "schedulerName": "volcano"}),
        ).value
    )
    # The operator settings choose the backend of jobs that name none.
    native = spec.parse(job(scheduling={"gang": True}), Settings(gang_backend="kubernetes"))
    assert render.pod_group(native)["apiVersion"] == "scheduling.k8s.io/v1alpha2"
    assert "schedulingGroup" not in render.pod(parse(job()), 0, 0)["spec"]


def test_pod_template_additions() -> None:
    template = {
        "nodeSelector": {"pool": "a"},
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "env": [{"name": "EXTRA", "value": "1"}],
        "volumes": [{"name": "shm", "emptyDir": {}}],
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
    }
    pod = render.pod(parse(job(podTemplate=template, checkpoint={"resumeFrom": "demo/last.ckpt"})), 0, 0)
    assert pod["spec"]["nodeSelector"] == {"pool": "a"}
    assert pod["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert env_of(pod)["EXTRA"] == "1"
    cmd = pod["spec"]["containers"][0]["command"]
    assert cmd[-2:] == ["--set", "resume=/zoo/checkpoint/demo/last.ckpt"]
    assert {"name": "shm", "emptyDir": {}} in pod["spec"]["volumes"]
    assert {"name": "shm", "mountPath": "/dev/shm"} in pod["spec"]["containers"][0]["volumeMounts"]


def test_service_is_headless_and_publishes_unready_pods() -> None:
    svc = render.service(parse(job()))
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == {c.LABEL_JOB: "demo"}


def test_dynamic_launch_config_map_holds_the_scheduler_address() -> None:
    cm = render.launch_config_map(parse(job()))
    assert cm["metadata"]["name"] == "demo-launch"
    assert '"host": "demo-sched.demo.ns1.svc.cluster.local"' in cm["data"]["scheduler.json"]


def test_dry_run_yaml_round_trips() -> None:
    text = yaml.safe_dump(ascend_job(replicas=2))
    objs = dryrun.objects(text, SETTINGS)
    assert list(yaml.safe_load_all(dryrun.to_yaml(objs))) == objs


def test_static_devices_tell_each_pod_its_server_and_npu() -> None:
    static = [
        {
            "podIndex": i,
            "serverId": f"10.0.0.{1 + i // 2}",
            "deviceId": str(7 - i),
            "deviceIp": f"192.98.0.{i}",
        }
        for i in reversed(range(4))
    ]
    js = parse(ascend_job(replicas=4, rankTable={"staticDevices": static}))
    for i in range(4):
        env = env_of(render.pod(js, i, 0))
        assert (env["ZOO_ASCEND_SERVER_ID"], env["ZOO_ASCEND_DEVICE_ID"]) == (
            f"10.0.0.{1 + i // 2}",
            str(7 - i),
        )
    assert "ZOO_ASCEND_SERVER_ID" not in env_of(render.pod(parse(ascend_job()), 0, 0))


# ---- scheduling hygiene: CPU/GPU pods off NPU nodes, Ascend pods tolerate NPU taints (issue 21) ----

NPU_NODE = {
    "accelerator": "huawei-Ascend910",
    "node.kubernetes.io/npu.chip.name": "910B3",
    "accelerator-type": "module-910b-8",
}


def node_affinity_admits(pod: dict, node_labels: dict[str, str]) -> bool:
    """Whether the pod's required node affinity admits a node with these labels (the kube-scheduler's
    NodeAffinity filter for the operators used here: In, NotIn, Exists, DoesNotExist; terms ORed, expressions ANDed)."""
    required = ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True

    def ok(expr: dict) -> bool:
        has, value = expr["key"] in node_labels, node_labels.get(expr["key"])
        return {
            "In": lambda: has and value in expr["values"],
            "NotIn": lambda: not has or value not in expr["values"],
            "Exists": lambda: has,
            "DoesNotExist": lambda: not has,
        }[expr["operator"]]()

    return any(all(ok(e) for e in term["matchExpressions"]) for term in required["nodeSelectorTerms"])


@pytest.mark.parametrize("device", [{"type": "CPU"}, {"type": "GPU"}])
def test_cpu_and_gpu_pods_stay_off_npu_nodes(device: dict) -> None:
    job_spec = parse(job(device=device, launch="dynamic"))
    for pod in render.pods(job_spec, 0):  # the scheduler pod too: it is a CPU process
        assert not node_affinity_admits(pod, NPU_NODE), pod["metadata"]["name"]
        for key in ("accelerator", "node.kubernetes.io/npu.chip.name"):  # either label keeps the pod off
            value = NPU_NODE[key]
            assert not node_affinity_admits(pod, {"kubernetes.io/hostname": "n", key: value})
        assert node_affinity_admits(pod, {"kubernetes.io/hostname": "cpu-node-1"})
        assert node_affinity_admits(pod, {"accelerator": "nvidia-tesla-t4"})  # a GPU node's own label
        assert "tolerations" not in pod["spec"]


def test_a_user_node_selector_on_an_npu_label_lifts_the_exclusion() -> None:
    body = job(podTemplate={"nodeSelector": {"accelerator": "huawei-Ascend910"}})
    pod = render.pod(parse(body), 0, 0)
    assert "nodeAffinity" not in (pod["spec"].get("affinity") or {})
    assert pod["spec"]["nodeSelector"] == {"accelerator": "huawei-Ascend910"}
    other = render.pod(parse(job(podTemplate={"nodeSelector": {"disk": "ssd"}})), 0, 0)
    assert not node_affinity_admits(other, {**NPU_NODE, "disk": "ssd"})  # an unrelated selector does not


def test_ascend_pods_tolerate_npu_taints_and_keep_the_users_own() -> None:
    pods = render.pods(parse(ascend_job(replicas=2)), 0)
    for pod in pods:
        assert pod["spec"]["tolerations"] == list(render.NPU_TOLERATIONS)
        assert node_affinity_admits(pod, NPU_NODE)
    mine = [
        {"key": "team", "operator": "Equal", "value": "vision", "effect": "NoSchedule"},
        {"key": "huawei.com/Ascend910", "operator": "Exists", "effect": "NoSchedule"},
    ]
    pod = render.pod(parse(ascend_job(replicas=2, podTemplate={"tolerations": mine})), 0, 0)
    assert pod["spec"]["tolerations"] == [render.NPU_TOLERATIONS[1], *mine]  # no duplicate of the user's own


def test_ascend_per_node_affinity_is_kept_next_to_the_tolerations() -> None:
    pod = render.pod(parse(ascend_job(replicas=16, device={"type": "Ascend910", "perNode": 8})), 9, 0)
    assert set(pod["spec"]["affinity"]) == {"podAffinity", "podAntiAffinity"}
