"""Issue 24 against a real apiserver: every write by name names the exact object it was meant for.

Between the pass's read and its write, the object holding a name can be deleted and created again by someone
else. Each write below is made with the reference read before that swap and must be refused by the apiserver
itself, leaving the newcomer as it was: the rank-table put (a JSON patch testing metadata.uid: 422), the job's
status (the same on the status subresource, where a merge patch's metadata.uid is NOT honoured: shown here),
the Kueue mark on a pod (a merge patch carrying metadata.uid: 422), the finalizer removal and the job's deletion.
No operator runs: kube.py is called directly, so nothing else writes. About 10 s.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from operator_fixtures import apply, cpu_job, get

from zoo_operator import kube

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NO_NODE = {"nodeSelector": {"zoo-test/no-such-node": "true"}}


def owner(uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelzoo.io/v1alpha1",
        "kind": "ZooTrainingJob",
        "name": "wp",
        "uid": uid,
        "controller": True,
    }


def test_writes_by_name_are_refused_for_an_object_that_replaced_the_one_read(
    ztj_crd: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = ztj_crd
    monkeypatch.setenv("KUBECONFIG", cluster.env["KUBECONFIG"])
    apply(cluster, namespace, cpu_job("wp", podTemplate=NO_NODE))
    job = get(cluster, namespace, "ztj", "wp")
    assert job is not None
    job_uid = job["metadata"]["uid"]
    ours = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "wp-ranktable", "namespace": namespace, "ownerReferences": [owner(job_uid)]},
        "data": {"hccl.json": "initializing", "attempt": "0"},
    }
    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "wp-ranktable", "namespace": namespace},
        "data": {"hccl.json": "planted"},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "wp-worker-0", "namespace": namespace, "finalizers": ["example.com/hold"]},
        "spec": {**NO_NODE, "containers": [{"name": "c", "image": "zoo-operator/workload-cpu:dev"}]},
    }

    def swap(kind: str, name: str, replacement: dict[str, Any]) -> dict[str, Any]:
        """Delete the object and create another one of that name (someone else's)."""
        if kind == "pod":  # let the old pod go: its finalizer would hold the name
            cluster.kubectl(
                "patch",
                "pod",
                name,
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
            )
        cluster.kubectl("delete", kind, name, "-n", namespace, "--wait=true", "--timeout=60s")
        apply(cluster, namespace, replacement)
        now = get(cluster, namespace, kind, name)
        assert now is not None
        return now

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        try:
            # The rank table: our own ConfigMap takes the put (keys not in it kept) ...
            await kube.create(ours)
            await kube.put_config_map({**ours, "data": {"hccl.json": "completed"}})
            seen["own table"] = (get(cluster, namespace, "configmap", "wp-ranktable") or {}).get("data")
            # ... read, then replaced by someone else's before the write: the apiserver refuses the write.
            found = await kube.read_owned(ours)
            assert found is not None
            planted = swap("configmap", "wp-ranktable", foreign)
            with pytest.raises(kube.NotOwned) as raised:
                await kube.patch_config_map_data(found, {"hccl.json": "completed"})
            seen["table refused"] = (raised.value.kind, raised.value.name)
            seen["planted kept"] = get(cluster, namespace, "configmap", "wp-ranktable") == planted
            with pytest.raises(kube.NotOwned):  # and a put that reads it first does not touch it either
                await kube.put_config_map(ours)
            seen["planted still"] = get(cluster, namespace, "configmap", "wp-ranktable") == planted

            # The job's status: written for the job read; refused for a job of that name created since.
            await kube.patch_job_status(namespace, "wp", {"phase": "Pending"}, uid=job_uid, has_status=False)
            seen["own status"] = (get(cluster, namespace, "ztj", "wp") or {}).get("status")
            new_job = swap("ztj", "wp", cpu_job("wp", podTemplate=NO_NODE))
            with pytest.raises(kube.NotOwned):
                await kube.patch_job_status(namespace, "wp", {"phase": "Failed"}, uid=job_uid)
            seen["new job untouched"] = (get(cluster, namespace, "ztj", "wp") or {}).get("status")
            await kube.delete_job(namespace, "wp", job_uid)  # the old job's deletion spares the new one
            seen["new job kept"] = (get(cluster, namespace, "ztj", "wp") or {})["metadata"]["uid"] == new_job[
                "metadata"
            ]["uid"]

            # A rank pod: read, then replaced; neither the Kueue mark nor the finalizer removal reaches the new one.
            apply(cluster, namespace, pod)
            old_uid = (get(cluster, namespace, "pod", "wp-worker-0") or {})["metadata"]["uid"]
            newcomer = swap("pod", "wp-worker-0", pod)
            await kube.annotate_pod(namespace, "wp-worker-0", {"example.com/mark": "false"}, old_uid)
            await kube.remove_pod_finalizer(namespace, "wp-worker-0", "example.com/hold", old_uid)
            after = get(cluster, namespace, "pod", "wp-worker-0") or {}
            seen["pod untouched"] = (
                after["metadata"].get("resourceVersion") == newcomer["metadata"]["resourceVersion"]
            )
            new_uid = newcomer["metadata"]["uid"]
            await kube.annotate_pod(namespace, "wp-worker-0", {"example.com/mark": "false"}, new_uid)
            await kube.remove_pod_finalizer(namespace, "wp-worker-0", "example.com/hold", new_uid)
            meta = (get(cluster, namespace, "pod", "wp-worker-0") or {}).get("metadata") or {}
            seen["own pod"] = (
                (meta.get("annotations") or {}).get("example.com/mark"),
                meta.get("finalizers"),
            )
        finally:
            await kube.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen["own table"] == {"hccl.json": "completed", "attempt": "0"}
    assert seen["table refused"] == ("ConfigMap", "wp-ranktable")
    assert seen["planted kept"] and seen["planted still"], "the other owner's ConfigMap was written"
    assert seen["own status"] == {"phase": "Pending"}
    assert not seen["new job untouched"], (
        f"the old job's status reached the new job: {seen['new job untouched']}"
    )
    assert seen["new job kept"]
    assert seen["pod untouched"], "a write meant for the old pod reached the new one"
    assert seen["own pod"] == ("false", None)

    # Why the status write is a JSON patch: the apiserver takes a merge patch carrying another job's
    # metadata.uid on the status subresource (the status strategy copies the stored metadata before validation).
    stale = json.dumps({"metadata": {"uid": job_uid}, "status": {"phase": "Failed"}})
    cluster.kubectl(
        "patch", "ztj", "wp", "-n", namespace, "--subresource=status", "--type=merge", "-p", stale
    )
    assert (get(cluster, namespace, "ztj", "wp") or {}).get("status") == {"phase": "Failed"}
