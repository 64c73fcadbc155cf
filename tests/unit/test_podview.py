"""PodView from pod objects as the apiserver returns them."""

from __future__ import annotations

import json

from zoo_operator import conditions as c
from zoo_operator import podview


def pod(status: dict, **meta: object) -> dict:
    return {
        "metadata": {
            "name": "j-worker-3",
            "uid": "u1",
            "creationTimestamp": "2026-11-22T10:00:00Z",
            "labels": {c.LABEL_JOB: "j", c.LABEL_RANK: "3", c.LABEL_ROLE: "worker"},
            "annotations": {c.ANNOTATION_ATTEMPT: "2"},
            "ownerReferences": [
                {"uid": "other", "controller": False},
                {"uid": "job-uid", "controller": True},
            ],
            **meta,
        },
        "spec": {"nodeName": "ascend-node-1"},
        "status": status,
    }


def test_running_worker() -> None:
    v = podview.view(
        pod(
            {
                "phase": "Running",
                "podIP": "10.0.0.7",
                "containerStatuses": [{"state": {"running": {"startedAt": "2026-11-22T10:00:05Z"}}}],
            }
        )
    )
    assert (v.name, v.index, v.attempt, v.owner_uid, v.node, v.ip) == (
        "j-worker-3",
        3,
        2,
        "job-uid",
        "ascend-node-1",
        "10.0.0.7",
    )
    assert v.running and not v.terminated and not v.failed
    assert v.created == podview.parse_time("2026-11-22T10:00:00Z")


def test_unschedulable_and_image_pull() -> None:
    unsched = podview.view(
        pod(
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
                    }
                ],
            }
        )
    )
    assert unsched.unschedulable.startswith("0/3 nodes are available")
    pulling = podview.view(
        pod(
            {
                "phase": "Pending",
                "containerStatuses": [
                    {"state": {"waiting": {"reason": "ErrImagePull", "message": "image x not known"}}}
                ],
            }
        )
    )
    assert pulling.waiting_reason == "ErrImagePull" and pulling.waiting_message == "image x not known"


def test_terminated_with_message_and_device_annotation() -> None:
    body = pod(
        {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "state": {
                        "terminated": {
                            "exitCode": 66,
                            "reason": "Error",
                            "message": '{"status": "failed", "reason": "DatasetMissing"}',
                        }
                    }
                }
            ],
        }
    )
    body["metadata"]["annotations"][c.ASCEND_ANNOTATION] = json.dumps({"pod_name": "j-worker-3"})
    body["metadata"]["deletionTimestamp"] = "2026-11-22T10:05:00Z"
    v = podview.view(body)
    assert v.exit_code == 66 and v.failed and v.terminated and v.deleting
    assert "DatasetMissing" in v.termination_message and v.device_annotation


def test_scheduler_pod_and_missing_fields() -> None:
    v = podview.view({"metadata": {"name": "j-sched", "labels": {c.LABEL_ROLE: "scheduler"}}})
    assert v.role == c.ROLE_SCHEDULER and v.index is None and v.attempt == 0 and v.phase == "Pending"
    assert v.created is None and v.node is None and not v.running


def test_time_helpers() -> None:
    assert podview.format_time(0) == "1970-01-01T00:00:00Z"
    assert podview.parse_time("1970-01-01T00:00:10Z") == 10.0
    assert podview.parse_time("yesterday") is None and podview.parse_time(None) is None


def test_device_annotation_of_either_key_and_the_host_ip() -> None:
    v7 = '{"pod_name": "j-worker-3", "server_id": "10.0.0.9", "devices": []}'
    npu = '{"pod_name": "j-worker-3", "server_id": "uid", "host_ip": "10.0.0.9", "devices": []}'
    a = podview.view(pod({"hostIP": "10.0.0.9"}, annotations={c.ASCEND_ANNOTATION: v7}))
    b = podview.view(pod({}, annotations={c.ASCEND_NPU_ANNOTATION: npu}))
    assert (a.device_annotation, a.host_ip) == (v7, "10.0.0.9")
    assert (b.device_annotation, b.host_ip) == (npu, None)


def test_gated_pod_is_queued_not_unschedulable() -> None:
    body = pod(
        {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "SchedulingGated",
                    "message": "Scheduling is blocked due to non-empty scheduling gates",
                }
            ],
        }
    )
    body["spec"] = {"schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]}
    gated = podview.view(body)
    assert gated.queued and gated.unschedulable is None
    # Ungated a moment ago: the scheduler has not replaced the SchedulingGated condition yet.
    body["spec"] = {}
    assert podview.view(body).queued
    plain = podview.view(
        pod(
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes",
                    }
                ],
            }
        )
    )
    assert not plain.queued and plain.unschedulable == "0/1 nodes"


def test_kueue_finalizer() -> None:
    assert podview.view(pod({}, finalizers=[c.KUEUE_FINALIZER])).kueue_finalizer
    assert not podview.view(pod({}, finalizers=["other"])).kueue_finalizer


def test_eviction_conditions_name_who_stopped_the_pod() -> None:
    kueue = {
        "type": "TerminationTarget",
        "status": "True",
        "reason": "WorkloadEvicted",
        "message": "Preempted",
    }
    drain = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
    assert podview.view(pod({"conditions": [kueue]})).evicted_by == "Kueue: WorkloadEvicted"
    assert podview.view(pod({"conditions": [drain]})).evicted_by == "Kubernetes: EvictionByEvictionAPI"
    # A condition that is no longer true, or none at all: not evicted.
    assert podview.view(pod({"conditions": [{**drain, "status": "False"}]})).evicted_by is None
    assert podview.view(pod({})).evicted_by is None
