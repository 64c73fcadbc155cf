"""Builders of the job's objects: names, labels, owners, environment, volumes, scheduling (contracts.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from operator_jobs import ascend_job, job

from zoo_operator import conditions as c
from zoo_operator import dryrun, render, spec
from zoo_operator.settings import Settings

SETTINGS = Settings(image_cpu="zoo-operator/workload-cpu:t", image_ascend="zoo-operator/workload-ascend:t")
GOLDEN = Path(__file__).parent / "golden"


def parse(body: dict) -> spec.JobSpec:
    return spec.parse(body, SETTINGS)


def env_of(pod: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


def test_golden_ascend_worker_pod() -> None:
    pod = render.pod(parse(ascend_job(replicas=2)), 1, attempt=0)
    golden = yaml.safe_load((GOLDEN / "pod_ascend_worker_1.yaml").read_text())
    assert pod == golden


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
    assert pods[0]["metadata"]["labels"][c.LABEL_ROLE] == "scheduler" and c.LABEL_RANK not in pods[0]["metadata"][
        "labels"]
    assert pods[2]["metadata"]["labels"][c.LABEL_RANK] == "1"


def test_dynamic_launch_environment() -> None:
    js = parse(job())
    sched, worker = render.pod(js, None, 0), render.pod(js, 1, 0)
    host = "demo-sched.demo.ns1.svc.cluster.local"
    assert env_of(sched)["MS_ROLE"] == "MS_SCHED" and env_of(sched)["MS_NODE_ID"] == "sched"
    w = env_of(worker)
    assert (w["MS_ROLE"], w["MS_SCHED_HOST"], w["MS_SCHED_PORT"], w["MS_WORKER_NUM"], w["MS_NODE_ID"]) == (
        "MS_WORKER", host, "8118", "2", "1")
    assert w["RANK_SIZE"] == "2" and w["ZOO_MODEL"] == "resnet50_bam" and w["ZOO_TERMINATION_LOG"] == (
        "/dev/termination-log")
    assert w["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "RANK_TABLE_FILE" not in w
    assert "resources" not in worker["spec"]["containers"][0]  # CPU: no device request


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


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (3, "3"), (None, "null"),
                                             ([1, 1, 1, 1], "[1, 1, 1, 1]"), (0.001, "0.001"), ("poly", "poly"),
                                             ("0.5", '"0.5"'), ("yes", '"yes"'), ("", '""')])
def test_set_values_read_back_with_their_type(value: object, text: str) -> None:
    assert render.set_value(value) == text
    assert yaml.safe_load(text) == value


def test_device_resources_and_user_resources() -> None:
    js = parse(ascend_job(resources={"limits": {"memory": "8Gi"}, "requests": {"cpu": "2"}}))
    res = render.pod(js, 0, 0)["spec"]["containers"][0]["resources"]
    assert res == {"limits": {"memory": "8Gi", "huawei.com/Ascend910": 1},
                   "requests": {"cpu": "2", "huawei.com/Ascend910": 1}}


def test_ranktable_mount_is_a_directory_never_subpath() -> None:
    pod = render.pod(parse(ascend_job()), 0, 0)
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["zoo-ranktable"]["mountPath"] == "/etc/zoo/ranktable" and "subPath" not in mounts["zoo-ranktable"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["zoo-ranktable"]["configMap"]["name"] == "asc-ranktable"
    env = env_of(pod)
    assert env["RANK_TABLE_FILE"] == "/etc/zoo/ranktable/hccl.json"
    assert env["ZOO_RANKS_FILE"] == "/etc/zoo/ranktable/ranks.json"
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


def test_pod_template_additions() -> None:
    template = {"nodeSelector": {"pool": "a"}, "tolerations": [{"key": "k", "operator": "Exists"}],
                "env": [{"name": "EXTRA", "value": "1"}], "volumes": [{"name": "shm", "emptyDir": {}}],
                "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}]}
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
