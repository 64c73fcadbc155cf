"""spec.checkpoint: durable storage (claimName, hostPath), the per-job directory, keep-N and the stop grace."""

from __future__ import annotations

import pytest
from operator_jobs import job

from zoo_operator import render, spec
from zoo_operator.settings import Settings

SETTINGS = Settings(image_cpu="cpu:1")


def parse(body: dict) -> spec.JobSpec:
    return spec.parse(body, SETTINGS)


def _volume(pod: dict) -> dict:
    return next(v for v in pod["spec"]["volumes"] if v["name"] == "zoo-checkpoint")


def test_claim_name_mounts_the_pvc() -> None:
    pod = render.pod(parse(job(checkpoint={"claimName": "ckpts"})), 0, 0)
    assert _volume(pod) == {"name": "zoo-checkpoint", "persistentVolumeClaim": {"claimName": "ckpts"}}
    mount = next(m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "zoo-checkpoint")
    assert mount == {"name": "zoo-checkpoint", "mountPath": "/zoo/checkpoint"}  # writable


def test_host_path_is_created_on_the_node() -> None:
    pod = render.pod(parse(job(checkpoint={"hostPath": "/var/zoo"})), 0, 0)
    assert _volume(pod) == {
        "name": "zoo-checkpoint",
        "hostPath": {"path": "/var/zoo", "type": "DirectoryOrCreate"},
    }


def test_default_is_an_empty_dir_and_the_directory_is_per_job() -> None:
    js = parse(job())
    assert js.checkpoint_volume == {"emptyDir": {}}
    cmd = render.command(js)
    assert cmd[cmd.index("--output-dir") + 1] == "/zoo/checkpoint/ns1/demo-uid-1"
    # the same name in another namespace, or a new job object of the same name, gets another directory
    other = job()
    other["metadata"].update(namespace="ns2")
    assert parse(other).checkpoint_path == "ns2/demo-uid-1"
    recreated = job()
    recreated["metadata"]["uid"] = "0f1e2d3c-4b5a"
    assert parse(recreated).checkpoint_path == "ns1/demo-0f1e2d3c"
    assert parse(job(checkpoint={"path": "shared/run"})).checkpoint_path == "shared/run"


@pytest.mark.parametrize(
    "given",
    [
        {"claimName": "a", "hostPath": "/b"},
        {"claimName": "a", "volume": {"emptyDir": {}}},
        {"hostPath": "relative"},
    ],
)
def test_conflicting_or_bad_storage_is_refused(given: dict) -> None:
    with pytest.raises(spec.InvalidSpec, match="spec.checkpoint"):
        parse(job(checkpoint=given))


def test_keep_and_grace() -> None:
    js = parse(
        job(
            checkpoint={"keep": 3, "resumeFrom": "x/y.ckpt"},
            hyperparameters={"epochs": 1, "keep_checkpoint_max": 10},
        )
    )
    cmd = render.command(js)
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    # spec.checkpoint.keep comes after the hyperparameters (the last --set of a key wins), resume stays last
    assert sets.index("keep_checkpoint_max=3") > sets.index("keep_checkpoint_max=10")
    assert sets[-1] == "resume=/zoo/checkpoint/x/y.ckpt"
    pod = render.pod(js, 0, 0)
    assert pod["spec"]["terminationGracePeriodSeconds"] == spec.DEFAULT_STOP_GRACE_SECONDS
    pod = render.pod(parse(job(checkpoint={"stopGracePeriodSeconds": 600})), 0, 0)
    assert pod["spec"]["terminationGracePeriodSeconds"] == 600


def test_the_crd_refuses_two_storages_too() -> None:
    from zoo_operator import schema

    rules = schema._spec()["properties"]["checkpoint"]["x-kubernetes-validations"]
    assert any("claimName" in r["rule"] and "hostPath" in r["rule"] and "volume" in r["rule"] for r in rules)
