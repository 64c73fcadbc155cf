"""Safe by default (issue 11), end to end with the chart-installed operator and its platform policy (the chart's
default, plus hostPath volumes and PATH in podTemplate, which test_ascend needs):
pods a job's creator may not make are refused before any pod exists, pods pass Pod Security `restricted`,
a pod that cannot start says why (in the user's terms) and fails the job within schedulingTimeoutSeconds, and a
deleted worker of a running gang restarts the whole gang.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import E2E, tiny_job, wait_for
from test_bad_input import bad_job

pytestmark = [pytest.mark.e2e]

POLICY = {
    "host-root": (
        {
            "podTemplate": {
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                "volumeMounts": [{"name": "root", "mountPath": "/host"}],
            }
        },
        # (the e2e release allows hostPath in podTemplate for test_ascend; "/" never is)
        "spec.podTemplate.volumes[0].hostPath.path: / is a system directory",
    ),
    "secret-volume": (
        {"podTemplate": {"volumes": [{"name": "s", "secret": {"secretName": "db"}}]}},
        "spec.podTemplate.volumes[0].secret",
    ),
    "ld-preload": (
        {"podTemplate": {"env": [{"name": "LD_PRELOAD", "value": "/tmp/x-secret-value.so"}]}},
        "spec.podTemplate.env[0].name: LD_PRELOAD may not be set",
    ),
    "secret-env": (
        {
            "podTemplate": {
                "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]
            }
        },
        "spec.podTemplate.env[0].valueFrom.secretKeyRef: PW",
    ),
    "tolerate-all": (
        {"podTemplate": {"tolerations": [{"operator": "Exists"}]}},
        "spec.podTemplate.tolerations[0]: a toleration without a key",
    ),
    "node-critical": (
        {"scheduling": {"priorityClassName": "system-node-critical"}},
        "spec.scheduling.priorityClassName: system-node-critical is reserved",
    ),
    "etc-dataset": (
        {"dataset": {"volume": {"hostPath": {"path": "/etc"}}, "trainPath": "x", "numClasses": 3}},
        "spec.dataset.volume.hostPath.path: /etc is a system directory",
    ),
}


@pytest.fixture(scope="module")
def policy_jobs(e2e: E2E) -> dict[str, dict[str, Any]]:
    """All policy cases applied at once; case -> final status."""
    for case, (spec, _) in POLICY.items():
        e2e.apply(bad_job(f"pol-{case}", **spec))
    return {
        case: e2e.wait_phase(f"pol-{case}", {"Failed", "Succeeded", "Running"}, timeout=120)
        for case in POLICY
    }


@pytest.mark.parametrize("case", sorted(POLICY))
def test_platform_policy_refuses_before_any_pod(
    e2e: E2E, policy_jobs: dict[str, dict[str, Any]], case: str
) -> None:
    status, field = policy_jobs[case], POLICY[case][1]
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidSpec"), status
    assert field in status["message"], status["message"]
    assert "secret-value" not in json.dumps(status), "no env value in status"
    assert all("secret-value" not in e["message"] for e in e2e.events(f"pol-{case}"))
    assert e2e.owned(f"pol-{case}") == {"Pod": [], "Service": [], "ConfigMap": []}


@pytest.fixture
def restricted(e2e: E2E) -> Iterator[None]:
    """The e2e namespace under Pod Security `restricted` for one test (other tests use hostPath datasets)."""
    label = "pod-security.kubernetes.io/enforce"
    e2e.cluster.kubectl("label", "namespace", e2e.namespace, f"{label}=restricted", "--overwrite")
    try:
        yield
    finally:
        e2e.cluster.kubectl("label", "namespace", e2e.namespace, f"{label}-", check=False)


def test_pods_are_accepted_in_a_restricted_namespace(e2e: E2E, restricted: None) -> None:
    # Control: the namespace really enforces `restricted` (a plain pod is refused).
    plain = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "c", "image": "zoo-operator/workload-cpu:x"}]},
    }
    proc = e2e.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(plain), check=False)
    assert proc.returncode != 0 and "violates PodSecurity" in proc.stderr, proc.stderr
    # A job whose spec allows it (no hostPath: an emptyDir dataset) gets every pod created.
    body = bad_job(
        "restricted", replicas=1, dataset={"volume": {"emptyDir": {}}, "trainPath": "train", "numClasses": 3}
    )
    e2e.apply(body)
    pods = wait_for(
        "the job's pods",
        lambda: e2e.pods("restricted") if len(e2e.pods("restricted")) == 2 else None,
        timeout=120,  # the operator shares 2 cores with the rest of the suite
    )
    for pod in pods:
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["automountServiceAccountToken"] is False
    status = e2e.status("restricted")
    assert "PodSecurity" not in str(status.get("message")), status


@pytest.mark.slow
def test_dataset_path_typo_says_why_and_fails_in_time(e2e: E2E) -> None:
    """A hostPath that does not exist: the kubelet's FailedMount reason reaches status at once, naming
    spec.dataset.volume, and the job fails after schedulingTimeoutSeconds instead of hanging."""
    body = tiny_job("typo", "resnet50_bam", e2e.data["images"] / "no-such-dir")
    body["spec"]["runPolicy"]["schedulingTimeoutSeconds"] = 25
    started = time.monotonic()
    e2e.apply(body)
    blocked = wait_for(
        "a PodStartBlocked status",
        lambda: e2e.status("typo") if e2e.status("typo").get("reason") == "PodStartBlocked" else None,
        timeout=60,
    )
    assert 'volume "zoo-data" (spec.dataset.volume)' in blocked["message"], blocked["message"]
    assert "doesn't exist" in blocked["message"], blocked["message"]
    status = e2e.wait_phase("typo", {"Failed", "Succeeded"}, timeout=90)
    assert (status["phase"], status["reason"]) == ("Failed", "PodStartFailed"), status
    assert "schedulingTimeoutSeconds=25" in status["message"] and "spec.dataset.volume" in status["message"]
    assert time.monotonic() - started < 90


@pytest.mark.slow
def test_deleted_worker_restarts_the_whole_gang(e2e: E2E) -> None:
    """Deleting one worker of a running job never recreates that rank alone into the running attempt."""
    body = tiny_job("lost", "resnet50_bam", e2e.data["images"], replicas=2, steps_per_epoch=400, epochs=5)
    body["spec"]["runPolicy"]["backoffLimit"] = 1
    body["spec"]["runPolicy"]["processRestarts"] = 0  # on, only the lost pod is recreated (issue 23)
    e2e.apply(body)
    e2e.wait_phase("lost", {"Running"}, timeout=240)
    e2e.kubectl("delete", "pod", "lost-worker-1", "--wait=false")
    status = e2e.wait_phase("lost", {"Restarting", "Failed"}, timeout=60)
    assert "lost-worker-1 of the running gang is gone" in status["message"], status
    assert status["restarts"] == 1
    assert any(e["reason"] == "PodLost" and e["type"] == "Warning" for e in e2e.events("lost"))
    attempts = {
        p["metadata"]["annotations"]["modelzoo.io/attempt"]
        for p in e2e.pods("lost")
        if not p["metadata"].get("deletionTimestamp")
    }
    assert attempts <= {"1"}, f"no pod of the old attempt is kept or recreated: {attempts}"
    e2e.kubectl("delete", "ztj", "lost", "--wait=false")


@pytest.mark.slow
def test_replicas_patch_restarts_the_gang_never_adds_a_pod(e2e: E2E) -> None:
    """`kubectl patch` of spec.replicas 1 -> 2 on a running job: the old gang goes, the new one starts whole."""
    body = tiny_job("grow", "resnet50_bam", e2e.data["images"], replicas=1, steps_per_epoch=400, epochs=5)
    e2e.apply(body)
    e2e.wait_phase("grow", {"Running"}, timeout=240)
    old = {p["metadata"]["annotations"]["modelzoo.io/spec-hash"] for p in e2e.pods("grow")}
    e2e.kubectl("patch", "ztj", "grow", "--type=merge", "-p", '{"spec": {"replicas": 2}}')
    mixed: list[str] = []

    def new_gang() -> list[dict[str, Any]] | None:
        pods = e2e.pods("grow")
        hashes = {p["metadata"]["annotations"]["modelzoo.io/spec-hash"] for p in pods}
        if hashes & old and hashes - old:
            mixed.append(str(sorted(p["metadata"]["name"] for p in pods)))
        fresh = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return fresh if len(fresh) == 3 and not hashes & old else None

    wait_for("the new gang of 2 workers and a scheduler", new_gang, timeout=120, interval=0.5)
    assert not mixed, f"a pod of the new spec existed beside the old gang: {mixed}"
    assert any(e["reason"] == "SpecChanged" and e["type"] == "Warning" for e in e2e.events("grow"))
    assert e2e.status("grow").get("restarts", 0) == 0
    e2e.kubectl("delete", "ztj", "grow", "--wait=false")


def test_edit_of_a_finished_job_is_recorded(e2e: E2E) -> None:
    """A finished job (here: failed, its dataset directory missing) edited afterwards: one Warning, no action."""
    body = bad_job(
        "edited",
        replicas=1,
        runPolicy={"schedulingTimeoutSeconds": 1},
        dataset={
            "volume": {"hostPath": {"path": "/tmp/zoo-no-such-dir", "type": "Directory"}},
            "trainPath": "train",
            "numClasses": 3,
        },
    )
    e2e.apply(body)
    done = e2e.wait_phase("edited", {"Failed", "Succeeded"}, timeout=120)
    e2e.kubectl(
        "patch", "ztj", "edited", "--type=merge", "-p", '{"spec": {"hyperparameters": {"epochs": 7}}}'
    )
    warning = wait_for(
        "a SpecChangeIgnored Event",
        lambda: [e for e in e2e.events("edited") if e["reason"] == "SpecChangeIgnored"],
        timeout=30,
    )
    assert len(warning) == 1 and "generation 1 -> 2" in warning[0]["message"]
    time.sleep(4)
    assert len([e for e in e2e.events("edited") if e["reason"] == "SpecChangeIgnored"]) == 1
    status = e2e.status("edited")
    assert (status["phase"], status["reason"]) == (done["phase"], done["reason"])
