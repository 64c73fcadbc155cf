"""NPUs through dynamic resource allocation (issue 21): the ResourceClaimTemplate per job, the pods that reference
it instead of requesting huawei.com/Ascend910, the planner creating it, and the chart/settings wiring.

Names follow MindCluster's Ascend DRA driver (zoo_operator.ascend: driver and DeviceClass npu.huawei.com).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from operator_jobs import ascend_job, job

from zoo_operator import ascend, planner, render, settings, spec
from zoo_operator.memory import JobMemory, Observation
from zoo_operator.settings import Settings

GOLDEN = Path(__file__).parent / "golden"
DRA = Settings(image_ascend="zoo-operator/workload-ascend:t", ascend_dra_device_class=ascend.DRA_DEVICE_CLASS)


def with_dra(js: spec.JobSpec) -> spec.JobSpec:
    """A rank-table job rendered as if its NPUs came through DRA. spec.parse refuses that combination today
    (spec.DRA_NO_RANKTABLE: no device IPs on DRA nodes); these tests keep the claim rendering of a whole server
    right for the day a device-IP source makes the rank table possible there."""
    assert js.ascend is not None
    return dataclasses.replace(
        js, ascend=dataclasses.replace(js.ascend, dra_device_class=ascend.DRA_DEVICE_CLASS)
    )


PLUGIN = Settings(image_ascend="zoo-operator/workload-ascend:t")


def server_job() -> spec.JobSpec:
    """16 devices, perNode 8, one pod per server: 2 pods of 8 NPUs each."""
    return with_dra(
        spec.parse(
            ascend_job(replicas=16, device={"type": "Ascend910", "perNode": 8, "podsPer": "server"}), PLUGIN
        )
    )


def test_dra_refuses_the_rank_table_launch_and_defaults_to_dynamic() -> None:
    """MindCluster's DRA driver publishes no device IP and writes no device annotation, so hccl.json could never
    complete: the rank-table launch is refused, naming the fields; server mode defaults to the dynamic launch."""
    server = {"type": "Ascend910", "perNode": 8, "podsPer": "server"}
    for body in (
        ascend_job(replicas=4, launch="ranktable"),
        ascend_job(replicas=16, launch="ranktable", device=server),
    ):
        with pytest.raises(
            spec.InvalidSpec, match="spec.launch: ranktable is not available with NPUs through DRA"
        ):
            spec.parse(body, DRA)
    assert spec.parse(ascend_job(replicas=16, device=server), DRA).launch == "dynamic"
    assert spec.parse(ascend_job(replicas=4), DRA).launch == "dynamic"
    assert (
        spec.parse(ascend_job(replicas=4), PLUGIN).launch == "ranktable"
    )  # the device-plugin path unchanged


def test_golden_server_pod_claims_its_eight_npus_through_dra() -> None:
    js = server_job()
    pod = render.pod(js, 1, attempt=0)
    golden = yaml.safe_load((GOLDEN / "pod_ascend_910b_dra_server_worker_1.yaml").read_text())
    assert pod == golden
    template = render.resource_claim_template(js)
    assert template == yaml.safe_load((GOLDEN / "resourceclaimtemplate_ascend_server.yaml").read_text())


def test_server_mode_claims_per_node_devices_and_device_mode_one() -> None:
    server = render.resource_claim_template(server_job())
    (request,) = server["spec"]["spec"]["devices"]["requests"]
    assert request == {
        "name": "npu",
        "exactly": {"deviceClassName": "npu.huawei.com", "allocationMode": "ExactCount", "count": 8},
    }
    device = spec.parse(ascend_job(replicas=16, device={"type": "Ascend910", "perNode": 8}), DRA)
    assert device.launch == "dynamic"
    (request,) = render.resource_claim_template(device)["spec"]["spec"]["devices"]["requests"]
    assert request["exactly"]["count"] == 1
    # The template is owned by the job (garbage-collected with it) and carries the job's labels.
    assert server["metadata"]["ownerReferences"][0]["kind"] == "ZooTrainingJob"
    assert (
        server["metadata"]["name"] == "asc-npu"
        and server["metadata"]["labels"]["modelzoo.io/job-name"] == "asc"
    )


@pytest.mark.parametrize("pods_per", ["device", "server"])
def test_dra_pods_reference_the_template_and_request_no_extended_resource(pods_per: str) -> None:
    body = ascend_job(replicas=16, device={"type": "Ascend910", "perNode": 8, "podsPer": pods_per})
    js = spec.parse(body, DRA) if pods_per == "device" else with_dra(spec.parse(body, PLUGIN))
    for pod in (p for p in render.pods(js, 0) if p["metadata"]["labels"]["modelzoo.io/role"] == "worker"):
        container = pod["spec"]["containers"][0]
        assert pod["spec"]["resourceClaims"] == [{"name": "npu", "resourceClaimTemplateName": "asc-npu"}]
        assert container["resources"]["claims"] == [{"name": "npu"}]
        for part in ("requests", "limits"):
            assert "huawei.com/Ascend910" not in container["resources"][part], container["resources"]
            assert "memory" in container["resources"][part]  # the rest of the resources is untouched


def test_without_the_setting_pods_request_the_extended_resource_and_no_template() -> None:
    js = spec.parse(ascend_job(replicas=2), Settings(image_ascend="zoo-operator/workload-ascend:t"))
    pod = render.pod(js, 0, 0)
    assert "resourceClaims" not in pod["spec"]
    assert "claims" not in pod["spec"]["containers"][0]["resources"]
    assert pod["spec"]["containers"][0]["resources"]["limits"]["huawei.com/Ascend910"] == 1
    assert [o["kind"] for o in render.all_objects(js)].count("ResourceClaimTemplate") == 0


def test_cpu_jobs_never_claim_npus_even_with_dra_on() -> None:
    js = spec.parse(job(), DRA)
    assert render.dra_device_class(js) == ""
    assert all("resourceClaims" not in p["spec"] for p in render.pods(js, 0))
    assert "ResourceClaimTemplate" not in [o["kind"] for o in render.all_objects(js)]


def test_the_dynamic_launch_scheduler_pod_claims_nothing() -> None:
    js = spec.parse(ascend_job(replicas=2, launch="dynamic"), DRA)
    sched, *workers = render.pods(js, 0)
    assert sched["metadata"]["name"] == "asc-sched" and "resourceClaims" not in sched["spec"]
    assert all(w["spec"]["resourceClaims"] for w in workers)


def test_the_planner_creates_the_template_with_the_job_once() -> None:
    body = ascend_job(replicas=2)
    first = planner.plan(Observation(body=body, pods=(), now=1.0), JobMemory(), DRA)
    kinds = [o["kind"] for o in first.ensure]
    assert "ResourceClaimTemplate" in kinds and len(first.create) == 3, kinds  # 2 workers + the scheduler
    mem = JobMemory()
    first.memory.apply(mem)
    existing = {("Service", "asc"), ("ConfigMap", "asc-launch")}
    again = planner.plan(Observation(body=body, pods=(), now=2.0, existing=existing), mem, DRA)
    assert "ResourceClaimTemplate" not in [o["kind"] for o in again.ensure]
    plain = planner.plan(Observation(body=body, pods=(), now=1.0), JobMemory(), Settings())
    assert "ResourceClaimTemplate" not in [o["kind"] for o in plain.ensure]


def test_settings_read_the_device_class_and_refuse_a_bad_name() -> None:
    env = {"ZOO_ASCEND_DRA_DEVICE_CLASS": "npu.huawei.com"}
    assert settings.from_env(env).ascend_dra_device_class == "npu.huawei.com"
    assert settings.from_env({}).ascend_dra_device_class == ""
    with pytest.raises(ValueError, match="ZOO_ASCEND_DRA_DEVICE_CLASS='NPU_Huawei'"):
        settings.from_env({"ZOO_ASCEND_DRA_DEVICE_CLASS": "NPU_Huawei"})
