"""Issue 25: node health from one shared watch index instead of reads per pass per job (nodehealth.py,
nodewatch.py, observe.read_health), on plain data; the watch loop against stand-ins of kube's list and watch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_hardware_faults import DOC_DEVICE_INFO, LOST, READY, annotation

from zoo_operator import faults, kube, nodehealth, nodewatch, observe, spec
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings

RESOURCE = "huawei.com/Ascend910"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def node(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": "1"}, **body}


def device_info(node_name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": faults.DEVICE_INFO_PREFIX + node_name}, "data": data}


def listed(clock: Clock) -> nodehealth.HealthIndex:
    index = nodehealth.HealthIndex(clock=clock)
    index.relisted_nodes([node("n1", READY), node("n2", LOST)])
    index.relisted_config_maps(
        [device_info("n1", DOC_DEVICE_INFO), {"metadata": {"name": "kube-proxy"}, "data": {"x": "y"}}]
    )
    index.nodes.connected = index.devices.connected = True
    return index


def test_unhealthy_by_resource_keeps_only_resources_with_a_fault() -> None:
    assert faults.unhealthy_by_resource(DOC_DEVICE_INFO) == {
        RESOURCE: {0: "NPUUnhealthy", 5: "NPUNetworkUnhealthy"}
    }
    healthy = {"DeviceInfoCfg": json.dumps({"DeviceInfo": {"DeviceList": {RESOURCE + "-Unhealthy": ""}}})}
    assert faults.unhealthy_by_resource(healthy) == {}
    assert faults.unhealthy_by_resource({"DeviceInfoCfg": "not json"}) == {}
    assert faults.unhealthy_by_resource(None) == {}


def test_the_index_answers_from_what_it_listed_and_keeps_only_health() -> None:
    index = listed(Clock())
    ready, unhealthy, read_nodes, read_devices = index.lookup(["n1", "n2"], RESOURCE)
    assert read_nodes == read_devices == []
    assert ready == {"n1": (True, ""), "n2": faults.node_ready(LOST)}
    assert unhealthy == {"n1": {0: "NPUUnhealthy", 5: "NPUNetworkUnhealthy"}, "n2": {}}
    assert list(index.npus) == ["n1"]  # kube-proxy's ConfigMap and healthy nodes leave nothing behind
    # A node the index does not hold (just created, or gone) is read by name, never taken for lost.
    assert index.lookup(["n1", "n9"], None) == ({"n1": (True, "")}, {}, ["n9"], [])


def test_watch_events_change_the_index() -> None:
    index = listed(Clock())
    index.node_event("MODIFIED", node("n2", READY))
    index.node_event("DELETED", node("n1", READY))
    assert index.lookup(["n1", "n2"], None) == ({"n2": (True, "")}, {}, ["n1"], [])
    index.node_event("ADDED", node("n1", LOST))
    assert index.lookup(["n1"], None)[0] == {"n1": faults.node_ready(LOST)}
    index.config_map_event("DELETED", device_info("n1", DOC_DEVICE_INFO))
    assert index.lookup(["n1"], RESOURCE)[1] == {"n1": {}}
    index.config_map_event("ADDED", device_info("n2", DOC_DEVICE_INFO))
    assert index.lookup(["n2"], RESOURCE)[1] == {"n2": {0: "NPUUnhealthy", 5: "NPUNetworkUnhealthy"}}
    healthy = {"DeviceInfoCfg": json.dumps({"DeviceInfo": {"DeviceList": {RESOURCE + "-Unhealthy": ""}}})}
    index.config_map_event("MODIFIED", device_info("n2", healthy))  # the NPU recovered
    assert index.npus == {}


def test_the_index_is_not_used_unlisted_or_long_after_its_watch_was_lost() -> None:
    clock = Clock()
    index = nodehealth.HealthIndex(clock=clock)
    assert index.lookup(["n1"], RESOURCE) == ({}, {}, ["n1"], ["n1"])  # nothing listed yet: read by name
    index = listed(clock)
    index.nodes.lost(clock.now)
    clock.now += nodehealth.MAX_STALE_SECONDS  # a reconnect within its retry delay: still answers
    assert index.lookup(["n1"], None)[2] == []
    clock.now += 1
    assert index.lookup(["n1"], None) == ({}, {}, ["n1"], [])
    index.nodes.connected = True
    # Device info without a usable list (a chart without the kube-system Role's list): only it is read.
    index.devices.connected = False
    index.devices.lost_at = clock.now - 60
    assert index.lookup(["n1"], RESOURCE) == ({"n1": (True, "")}, {}, [], ["n1"])


def ascend_job() -> spec.JobSpec:
    from operator_jobs import ascend_job as body

    return spec.parse(body(replicas=2), Settings())


def pods() -> list[PodView]:
    return [
        PodView(
            name=f"asc-worker-{i}",
            uid=f"u{i}",
            index=i,
            node="n1",
            phase="Running",
            running=True,
            device_annotation=annotation(i),
        )
        for i in range(2)
    ]


def test_read_health_makes_no_request_when_the_index_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []

    async def get_node(name: str) -> dict[str, Any]:
        reads.append(f"node {name}")
        return READY

    async def get_config_map_data(namespace: str, name: str) -> None:
        reads.append(f"configmap {name}")

    monkeypatch.setattr(kube, "get_node", get_node)
    monkeypatch.setattr(kube, "get_config_map_data", get_config_map_data)
    clock = Clock()
    index = listed(clock)
    monkeypatch.setattr(nodehealth, "INDEX", index)
    out = asyncio.run(observe.read_health(ascend_job(), pods()))
    assert reads == []
    assert [p.faulty_npus for p in out] == [((0, "NPUUnhealthy"),), ()]
    assert index.nodes.wanted_at == index.devices.wanted_at == clock.now  # the pass asked: watches stay open
    # A watch lost long ago: the pass reads what it held by name, as before issue 25; the other list still serves.
    index.nodes.connected = False
    index.nodes.lost_at = clock.now - 60
    out = asyncio.run(observe.read_health(ascend_job(), pods()))
    assert reads == ["node n1"]
    assert [p.faulty_npus for p in out] == [((0, "NPUUnhealthy"),), ()]
    index.devices.connected = False
    index.devices.lost_at = clock.now - 60
    out = asyncio.run(observe.read_health(ascend_job(), pods()))
    assert reads == ["node n1", "node n1", f"configmap {faults.DEVICE_INFO_PREFIX}n1"]
    assert [p.faulty_npus for p in out] == [(), ()]  # get_config_map_data said: no ConfigMap


# -- the watch loop (nodewatch.watch) against stand-ins of kube.list_pages and kube.watch_events ---------------


class FakeApi:
    """Pages and watch streams, scripted: each watch yields its events, then raises or ends."""

    def __init__(self, pages: list[list[dict[str, Any]]], watches: list[list[Any]]) -> None:
        self.pages = pages
        self.watches = watches
        self.calls: list[str] = []

    async def list_pages(self, path: str, limit: int) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        self.calls.append(f"list {path}")
        for i, page in enumerate(self.pages):
            yield page, f"rv{len(self.calls)}-{i}"

    async def watch_events(self, path: str, version: str, timeout: int) -> AsyncIterator[dict[str, Any]]:
        self.calls.append(f"watch {path} from {version}")
        if not self.watches:
            await asyncio.Event().wait()  # stays open until cancelled
        for item in self.watches.pop(0):
            if isinstance(item, BaseException):
                raise item
            yield item


def run_watch(
    api: FakeApi,
    index: nodehealth.HealthIndex,
    monkeypatch: pytest.MonkeyPatch,
    nodes: bool,
    list_pages: Any = None,
) -> None:
    """Run one watch loop for a few hundred turns of the event loop, then cancel it."""
    monkeypatch.setattr(kube, "list_pages", list_pages or api.list_pages)
    monkeypatch.setattr(kube, "watch_events", api.watch_events)
    monkeypatch.setattr(nodewatch, "RETRY_SECONDS", 0.001)

    async def scenario() -> None:
        task = asyncio.ensure_future(nodewatch.watch(index, nodes))
        for _ in range(200):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_the_watch_lists_in_pages_resumes_from_its_version_and_relists_on_410(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    index = nodehealth.HealthIndex(clock=clock)
    index.want(devices=False)
    lost = node("n2", LOST)
    lost["metadata"]["resourceVersion"] = "7"
    api = FakeApi(
        [[node("n1", READY)], [node("n2", READY)]],
        [
            [
                {"type": "MODIFIED", "object": lost},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
            ],
            [kube.Expired("gone")],
        ],
    )
    run_watch(api, index, monkeypatch, nodes=True)
    assert api.calls == [
        f"list {nodewatch.NODES}",
        f"watch {nodewatch.NODES} from rv1-1",  # the last page's resourceVersion: one snapshot
        f"watch {nodewatch.NODES} from 9",  # the ended watch resumes from the bookmark, with no list
        f"list {nodewatch.NODES}",  # 410 Gone: list again
        f"watch {nodewatch.NODES} from rv4-1",
    ]
    assert index.nodes.listed and not index.nodes.connected  # (cancelled: lost, usable a little longer)
    assert index.nodes.usable(clock.now)
    assert index.lookup(["n1", "n2"], None)[0] == {"n1": (True, ""), "n2": (True, "")}  # the relist's view


def test_the_watch_opens_only_when_asked_and_closes_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    index = nodehealth.HealthIndex(clock=clock)
    api = FakeApi([[device_info("n1", DOC_DEVICE_INFO)]], [])
    monkeypatch.setattr(nodewatch, "POLL_SECONDS", 0.001)
    run_watch(api, index, monkeypatch, nodes=False)
    assert api.calls == [] and not index.devices.listed  # no running Ascend job asked: nothing is read
    index.want(devices=True)
    run_watch(api, index, monkeypatch, nodes=False)
    assert api.calls == [f"list {nodewatch.CONFIG_MAPS}", f"watch {nodewatch.CONFIG_MAPS} from rv1-0"]
    assert index.npus == {"n1": {RESOURCE: {0: "NPUUnhealthy", 5: "NPUNetworkUnhealthy"}}}
    # Nobody asked for IDLE_SECONDS: the index drops what it held (and a pass reads by name again).
    clock.now += nodewatch.IDLE_SECONDS + 1
    api.watches = [[]]  # the open watch ends (its timeoutSeconds)
    index.devices.connected = False
    run_watch(api, index, monkeypatch, nodes=False)
    assert not index.devices.listed and index.npus == {}


def test_a_refused_list_leaves_the_reads_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chart without list/watch (before issue 25): the loop waits and the passes read by name."""
    from kubernetes_asyncio.client.rest import ApiException

    index = nodehealth.HealthIndex(clock=Clock())
    index.want(devices=False)

    async def refused(path: str, limit: int) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        raise ApiException(status=403, reason="Forbidden")
        yield [], ""  # (an async generator)

    api = FakeApi([], [])
    monkeypatch.setattr(nodewatch, "FORBIDDEN_RETRY_SECONDS", 3600)
    run_watch(api, index, monkeypatch, nodes=True, list_pages=refused)
    assert index.nodes.forbidden and not index.nodes.listed and api.calls == []
    assert index.lookup(["n1"], None) == ({}, {}, ["n1"], [])
