"""Every volume, mount path and env name the operator renders is reserved against the user (issue 20).

The names are not copied into this test: it renders every kind of job (CPU, GPU, each Ascend chip with and without
driver mounts, rank-table and dynamic launch, evaluate/export/fine-tune from another job) and collects what
render emits, so a name render adds later and the platform policy does not reserve fails here. Then each such
name or path, put into spec.podTemplate, must be refused naming the field before any pod exists (the apiserver
would refuse the pod: duplicate volume name or mount path).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from operator_jobs import ascend_job, job

from zoo_operator import conditions as c
from zoo_operator import platform_policy, render, results, spec
from zoo_operator.settings import Settings

SETTINGS = Settings()


def _kinds() -> list[dict[str, Any]]:
    bodies = [job(), job(device={"type": "GPU"}), ascend_job(launch="dynamic")]
    # Issue 21: a server pod of the dynamic launch (ZOO_NODE_RANK, ZOO_LOCAL_WORKER_NUM).
    bodies.append(
        ascend_job(launch="dynamic", device={"type": "Ascend910", "perNode": 2, "podsPer": "server"})
    )
    for chip in ("910", "910B", "A3"):
        bodies.append(ascend_job(device={"type": "Ascend910", "chip": chip, "perNode": 2}))
    for task in ("evaluate", "export"):
        bodies.append(job(task=task, replicas=1, **{"from": {"job": "src"}}))
    bodies.append(job(**{"from": {"job": "src"}}))
    bodies.append(
        job(model=None, hyperparameters=None, image="mine:1", command=["python", "train.py"])
    )  # issue 26
    return bodies


def _rendered(settings: Settings, ascend: bool | None = None) -> tuple[set[str], set[str], set[str]]:
    names, paths, envs = set(), set(), set()
    for body in _kinds():
        if ascend is not None and (body["spec"]["device"]["type"] == "Ascend910") != ascend:
            continue
        js = spec.parse(body, settings)
        if js.from_job:
            js = dataclasses.replace(js, source=results.assumed_source(js))
        for obj in render.all_objects(js):
            if obj["kind"] != "Pod":
                continue
            pod = obj["spec"]
            names |= {v["name"] for v in pod.get("volumes", [])}
            for container in pod["containers"]:
                paths |= {m["mountPath"] for m in container.get("volumeMounts", [])}
                paths.add(container.get("terminationMessagePath", "/dev/termination-log"))
                envs |= {e["name"] for e in container.get("env", [])}
    return names, paths, envs


@pytest.mark.parametrize("driver_mounts", [True, False])
def test_everything_render_emits_is_reserved(driver_mounts: bool) -> None:
    names, paths, envs = _rendered(dataclasses.replace(SETTINGS, ascend_driver_mounts=driver_mounts))
    assert names and paths and envs
    assert names <= set(platform_policy.RESERVED_VOLUMES), names - set(platform_policy.RESERVED_VOLUMES)
    assert paths <= set(platform_policy.RESERVED_MOUNT_ROOTS), paths - set(
        platform_policy.RESERVED_MOUNT_ROOTS
    )
    other = _rendered(SETTINGS, ascend=False)[
        1
    ]  # CPU and GPU pods: only the operator's own paths are reserved
    assert other <= set(c.OWN_MOUNT_PATHS), other - set(c.OWN_MOUNT_PATHS)
    free = {
        e
        for e in envs
        if e not in platform_policy.RESERVED_ENV and not e.startswith(platform_policy.RESERVED_ENV_PREFIXES)
    }
    assert not free, f"env render sets that a user could set too: {sorted(free)}"


def _refusal(**template: Any) -> str:
    with pytest.raises(spec.InvalidSpec) as err:
        spec.parse(ascend_job(podTemplate=template), SETTINGS)
    return str(err.value)


def test_each_rendered_volume_name_and_mount_path_is_refused_naming_the_field() -> None:
    names, paths, _ = _rendered(SETTINGS)
    for name in sorted(names):
        message = _refusal(volumes=[{"name": name, "emptyDir": {}}])
        assert f"spec.podTemplate.volumes[0].name: {name}" in message
    for path in sorted(paths):
        message = _refusal(
            volumes=[{"name": "mine", "emptyDir": {}}], volumeMounts=[{"name": "mine", "mountPath": path}]
        )
        assert f"spec.podTemplate.volumeMounts[0].mountPath: {path}" in message
