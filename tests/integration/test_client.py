"""The Python client on a real apiserver with the operator running: create (validated first), list by label,
wait for a phase, suspend, read, delete; and errors that say what went wrong."""

from __future__ import annotations

import time
from typing import Any

import pytest
from operator_fixtures import cpu_job, get

from zoo_operator.client import ClientError, InvalidSpec, ZooClient

pytestmark = pytest.mark.integration


def test_create_list_wait_suspend_delete(ztj_crd: Any, operator: Any, namespace: str) -> None:
    zc = ZooClient(namespace, kubeconfig=ztj_crd.kubeconfig)
    made = zc.create(body=cpu_job("c1", replicas=1), labels={"modelzoo.io/sweep": "t"})
    assert made["metadata"]["name"] == "c1" and made["metadata"]["uid"]
    zc.create("c2", body=cpu_job("ignored", replicas=1))
    assert [j["metadata"]["name"] for j in zc.list({"modelzoo.io/sweep": "t"})] == ["c1"]
    assert [j["metadata"]["name"] for j in zc.list()] == ["c1", "c2"]

    # The operator picks the job up: any phase it writes is one the client can wait for.
    status = zc.wait("c1", ("Pending", "Running", "Succeeded", "Failed"), timeout=60, interval=0.5)
    assert status["phase"] and zc.phase("c1") is not None
    with pytest.raises(TimeoutError, match="last phase seen: "):
        zc.wait("c1", ("NoSuchPhase",), timeout=1, interval=0.2)

    zc.suspend("c1")
    assert get(ztj_crd, namespace, "ztj", "c1")["spec"]["runPolicy"]["suspend"] is True
    zc.wait("c1", ("Suspended",), timeout=60, interval=0.5)
    assert isinstance(zc.history("c1"), list) and zc.result("c1") is None

    zc.delete("c1")
    zc.delete("c1")  # gone already is fine
    zc.delete("c2")

    deadline = time.monotonic() + 60
    while zc.list() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert zc.list() == []


def test_errors_say_what_went_wrong(ztj_crd: Any, namespace: str) -> None:
    zc = ZooClient(namespace, kubeconfig=ztj_crd.kubeconfig)
    with pytest.raises(InvalidSpec, match=r"spec\.replicas"):
        zc.create(body=cpu_job("bad", replicas=0))
    assert get(ztj_crd, namespace, "ztj", "bad") is None  # refused before anything was sent
    zc.create(body=cpu_job("twice", replicas=1))
    with pytest.raises(ClientError, match="twice: already exists"):
        zc.create(body=cpu_job("twice", replicas=1))
    with pytest.raises(ClientError, match="not found"):
        zc.get("nope")
    zc.delete("twice")
