"""kube.py against a real apiserver and kubelet: a followed log streams lines as they are written and ends
with the container; owners are read by name and a deletion by UID spares another pod of that name (issue 24)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from zoo_operator import kube

pytestmark = pytest.mark.integration

SCRIPT = "import time\nfor i in range(4):\n    print(f'line {i}', flush=True)\n    time.sleep(1.5)\n"


def test_follow_log_streams_lines_as_they_come_and_ends_with_the_container(
    cluster: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "talker"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "worker",
                    "image": "zoo-operator/workload-cpu:dev",
                    "command": ["python", "-c", SCRIPT],
                }
            ],
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))
    monkeypatch.setenv("KUBECONFIG", cluster.env["KUBECONFIG"])

    async def follow() -> list[tuple[float, str]]:
        got: list[tuple[float, str]] = []
        try:
            deadline = time.monotonic() + 120
            while not got and time.monotonic() < deadline:
                try:
                    async for line in kube.follow_log(namespace, "talker", 200, idle_timeout=30):
                        got.append((time.monotonic(), line))
                except kube.ERRORS:  # not started yet
                    await asyncio.sleep(1)
        finally:
            await kube.close()
        return got

    got = asyncio.run(follow())
    lines = [line for _, line in got if line]
    assert lines[-4:] == ["line 0", "line 1", "line 2", "line 3"]
    # Streamed, not read at the end: the lines arrived over the seconds the container wrote them.
    assert got[-1][0] - got[0][0] > 2.0


def test_owners_are_read_by_name_and_a_delete_by_uid_spares_another_pod(
    cluster: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24: controller_uid reads a named object's controller UID ("" without one, None when absent); a
    deletion with a UID precondition leaves a pod of that name with another UID in place."""
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "planted", "namespace": namespace},
        "data": {"k": "v"},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "squatter", "namespace": namespace},
        "spec": {
            "nodeSelector": {"zoo-test/no-such-node": "true"},
            "containers": [{"name": "c", "image": "zoo-operator/workload-cpu:dev"}],
        },
    }
    for obj in (cm, pod):
        cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    uid = json.loads(cluster.kubectl("get", "pod", "squatter", "-n", namespace, "-o", "json").stdout)[
        "metadata"
    ]["uid"]
    monkeypatch.setenv("KUBECONFIG", cluster.env["KUBECONFIG"])

    async def scenario() -> tuple[Any, ...]:
        try:
            owner = await kube.controller_uid(cm)
            absent = await kube.controller_uid({**cm, "metadata": {**cm["metadata"], "name": "absent"}})
            await kube.delete_pod(namespace, "squatter", "00000000-0000-0000-0000-000000000000")
            spared = cluster.kubectl("get", "pod", "squatter", "-n", namespace, check=False).returncode == 0
            await kube.delete_pod(namespace, "squatter", uid)
            return owner, absent, spared
        finally:
            await kube.close()

    owner, absent, spared = asyncio.run(scenario())
    assert (owner, absent, spared) == ("", None, True)
    gone = cluster.kubectl("get", "pod", "squatter", "-n", namespace, "-o", "json", check=False)
    assert gone.returncode != 0 or json.loads(gone.stdout)["metadata"].get("deletionTimestamp")
