"""kube.call: timeouts and retries with backoff (429 and 5xx retried, Retry-After respected, 4xx raised)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio.client.rest import ApiException

from zoo_operator import kube


def api_error(status: int, retry_after: str | None = None) -> ApiException:
    err = ApiException(status=status, reason="x")
    err.headers = {"Retry-After": retry_after} if retry_after else {}
    return err


def test_which_errors_are_retried() -> None:
    assert kube.retry_delay(1, api_error(404)) is None
    assert kube.retry_delay(1, api_error(409)) is None
    assert kube.retry_delay(1, ValueError("bug")) is None
    assert kube.retry_delay(1, api_error(500)) is not None
    assert kube.retry_delay(1, TimeoutError()) is not None
    assert kube.retry_delay(kube.RETRIES + 1, api_error(503)) is None  # gave up
    assert kube.retry_delay(1, api_error(429, "3")) == 3.0  # at least what Retry-After asks
    assert kube.retry_delay(1, api_error(429, "9999")) == kube.RETRY_AFTER_MAX_SECONDS
    delays = [kube.retry_delay(n, api_error(502)) or 0 for n in range(1, 6)]
    assert delays[-1] > delays[0] and max(delays) <= kube.RETRY_MAX_SECONDS


def test_call_retries_then_succeeds_and_times_out_hung_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube, "RETRY_BASE_SECONDS", 0.001)
    monkeypatch.setattr(kube, "REQUEST_TIMEOUT_SECONDS", 0.05)
    tries: list[int] = []

    async def flaky() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise api_error(429)
        if len(tries) == 2:
            await asyncio.sleep(10)  # hangs: cut by the timeout, then retried
        return "ok"

    assert asyncio.run(kube.call(flaky)) == "ok" and len(tries) == 3

    async def forbidden() -> str:
        tries.append(1)
        raise api_error(403)

    tries.clear()
    with pytest.raises(ApiException):
        asyncio.run(kube.call(forbidden))
    assert len(tries) == 1


def test_a_refused_pod_is_reported_with_the_apiservers_message(monkeypatch: pytest.MonkeyPatch) -> None:
    class Core:
        async def create_namespaced_pod(self, ns: str, obj: dict, **_: object) -> None:
            err = api_error(403)
            err.body = '{"kind": "Status", "message": "pods \\"p\\" is forbidden: exceeded quota: q"}'
            raise err

    async def core() -> Core:
        return Core()

    monkeypatch.setattr(kube, "_core", core)
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}
    with pytest.raises(kube.Refused) as info:
        asyncio.run(kube.create(pod))
    assert (info.value.name, info.value.code) == ("p", 403)
    assert info.value.message == 'pods "p" is forbidden: exceeded quota: q'


def test_a_local_queue_the_operator_may_not_read_holds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 24: Kueue's newest served version is asked; 404 is a missing LocalQueue, 403 (an install without
    the `get localqueues` rule) is "not known", so the job is not held by the operator's own RBAC."""
    asked: list[str] = []
    answer: dict[str, Any] = {}

    async def serves(api_version: str, plural: str) -> bool:
        asked.append(api_version)
        return api_version == "kueue.x-k8s.io/v1beta1" and plural == "localqueues"

    async def get_raw(path: str, what: str) -> object:
        asked.append(path)
        if answer.get("error") is not None:
            raise answer["error"]
        return answer.get("found")

    monkeypatch.setattr(kube, "serves", serves)
    monkeypatch.setattr(kube, "_get_raw", get_raw)
    answer["found"] = {"kind": "LocalQueue"}
    assert asyncio.run(kube.local_queue_exists("ns", "lq")) is True
    assert asked == [
        "kueue.x-k8s.io/v1beta2",
        "kueue.x-k8s.io/v1beta1",
        "/apis/kueue.x-k8s.io/v1beta1/namespaces/ns/localqueues/lq",
    ]
    answer["found"] = None
    assert asyncio.run(kube.local_queue_exists("ns", "lq")) is False
    answer["error"] = api_error(403)
    assert asyncio.run(kube.local_queue_exists("ns", "lq")) is None
    answer["error"] = api_error(500)
    with pytest.raises(ApiException):
        asyncio.run(kube.local_queue_exists("ns", "lq"))


def test_controller_uid_reads_every_kind_the_pass_creates_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 24's owner read covers each kind the pass creates by name, the DRA claim template included (a kind
    it could not read failed every pass of a DRA job)."""
    from zoo_operator import netpolicy, render, spec
    from zoo_operator.settings import Settings

    asked: list[str] = []

    async def get_raw(path: str, what: str) -> dict[str, Any] | None:
        asked.append(path)
        return {"metadata": {"ownerReferences": [{"uid": "u-1", "controller": True}]}}

    monkeypatch.setattr(kube, "_get_raw", get_raw)
    body = {
        "metadata": {"name": "j", "namespace": "ns", "uid": "u-1"},
        "spec": {
            "model": "resnet50_bam",
            "replicas": 2,
            "launch": "dynamic",  # the rank-table launch is refused with DRA (spec.DRA_NO_RANKTABLE)
            "device": {"type": "Ascend910", "perNode": 2},
            "dataset": {"volume": {"emptyDir": {}}, "trainPath": "t", "numClasses": 10},
        },
    }
    job = spec.parse(body, Settings(ascend_dra_device_class="npu.huawei.com"))
    objects = [render.resource_claim_template(job), render.service(job), netpolicy.network_policy(job)]
    for obj in objects:
        assert asyncio.run(kube.controller_uid(obj)) == "u-1"
    assert asked == [
        "/apis/resource.k8s.io/v1/namespaces/ns/resourceclaimtemplates/j-npu",
        "/api/v1/namespaces/ns/services/j",
        "/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies/j",
    ]
