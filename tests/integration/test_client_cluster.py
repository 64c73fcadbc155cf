"""The Python client on a real apiserver with the operator running: create (validated first), list by label,
wait for a phase, suspend, read, delete; and errors that say what went wrong."""

from __future__ import annotations

import time
from typing import Any

import pytest
from operator_fixtures import cpu_job, get

from zoo_operator.client import ClientError, InvalidSpec, ZooClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Any:
    yield
    ZooClient.close()


def test_create_list_wait_suspend_delete(ztj_crd: Any, operator: Any, namespace: str) -> None:
    zc = ZooClient(namespace, kubeconfig=ztj_crd.kubeconfig)
    made = zc.create(
        body=cpu_job("c1", replicas=1, runPolicy={"suspend": True}), labels={"modelzoo.io/sweep": "t"}
    )
    assert made["metadata"]["name"] == "c1" and made["metadata"]["uid"]
    zc.create("c2", body=cpu_job("ignored", replicas=1, runPolicy={"suspend": True}))
    assert [j["metadata"]["name"] for j in zc.list_jobs({"modelzoo.io/sweep": "t"})] == ["c1"]
    assert [j["metadata"]["name"] for j in zc.list_jobs()] == ["c1", "c2"]

    # The operator picks the suspended job up and says so; waiting for another phase times out naming it.
    assert zc.wait("c1", ("Suspended",), timeout=60, interval=0.5)["phase"] == "Suspended"
    with pytest.raises(TimeoutError, match="last phase seen: Suspended"):
        zc.wait("c1", ("Running",), timeout=1, interval=0.2)

    # Resumed, it runs its pod, which fails at once here (the emptyDir dataset has no train/ folder): the
    # default wait ends at any finished phase, and the reason comes back in the status.
    zc.suspend("c1", False)
    assert get(ztj_crd, namespace, "ztj", "c1")["spec"]["runPolicy"]["suspend"] is False
    status = zc.wait("c1", timeout=120, interval=0.5)
    assert status["phase"] == "Failed" and "DatasetMissing" in status.get("message", "") + status.get(
        "reason", ""
    )
    assert zc.result("c1") is None and isinstance(zc.history("c1"), list)

    zc.delete("c1")
    zc.delete("c1")  # gone already is fine
    zc.delete("c2")
    deadline = time.monotonic() + 60
    while zc.list_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert zc.list_jobs() == []


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
