"""Leader election: the pure step, and two electors against one in-memory Lease (exactly one leads)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from zoo_operator import kube, leader
from zoo_operator.podview import parse_time

T0 = 1_800_000_000.0


def test_step_takes_a_free_or_expired_lease_and_respects_a_live_one() -> None:
    first = leader.step(None, "a", T0)
    assert first is not None and first["holderIdentity"] == "a" and first["leaseTransitions"] == 0
    assert parse_time(first["renewTime"]) == pytest.approx(T0)
    assert leader.step(first, "b", T0 + leader.LEASE_SECONDS - 1) is None  # a's lease is live
    renewed = leader.step(first, "a", T0 + 5)
    assert renewed is not None and renewed["acquireTime"] == first["acquireTime"]
    taken = leader.step(first, "b", T0 + leader.LEASE_SECONDS + 1)  # a stopped renewing
    assert taken is not None and taken["holderIdentity"] == "b" and taken["leaseTransitions"] == 1
    released = {**first, "holderIdentity": ""}
    assert leader.step(released, "b", T0 + 1) is not None  # released: taken at once


def test_from_env() -> None:
    assert leader.from_env({}) is None
    cfg = leader.from_env({"ZOO_LEADER_ELECTION_NAMESPACE": "ops", "ZOO_POD_NAME": "op-1"})
    assert cfg == leader.Config("ops", "zoo-operator", "op-1")


class FakeLeases:
    """One Lease with resourceVersion checks, like the apiserver."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        monkeypatch.setattr(kube, "get_lease", self.get)
        monkeypatch.setattr(kube, "create_lease", self.create)
        monkeypatch.setattr(kube, "replace_lease", self.replace)

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.lease)

    async def create(self, namespace: str, name: str, spec: dict[str, Any]) -> bool:
        if self.lease is not None:
            return False
        self.version += 1
        self.lease = {
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(self.version)},
            "spec": spec,
        }
        return True

    async def replace(self, lease: dict[str, Any], spec: dict[str, Any]) -> bool:
        assert self.lease is not None
        if lease["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            return False
        self.version += 1
        self.lease = {
            "metadata": {**self.lease["metadata"], "resourceVersion": str(self.version)},
            "spec": spec,
        }
        return True


def test_one_of_two_leads_and_the_other_takes_over_when_it_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeLeases(monkeypatch)
    monkeypatch.setattr(leader, "RETRY_SECONDS", 0.01)
    leading: list[str] = []

    def lead_as(name: str) -> Any:
        async def lead() -> None:
            leading.append(name)
            await asyncio.Event().wait()

        return lead

    async def scenario() -> None:
        a = leader.Elector(leader.Config("ops", "zoo", "a"), lead_as("a"))
        b = leader.Elector(leader.Config("ops", "zoo", "b"), lead_as("b"))
        ta = asyncio.get_running_loop().create_task(a.run())
        await asyncio.sleep(0.05)
        tb = asyncio.get_running_loop().create_task(b.run())
        await asyncio.sleep(0.1)
        assert leading == ["a"] and a.leading and not b.leading
        ta.cancel()  # a shuts down and releases the lease
        await asyncio.gather(ta, return_exceptions=True)
        await asyncio.sleep(0.1)
        assert leading == ["a", "b"] and b.leading
        tb.cancel()
        await asyncio.gather(tb, return_exceptions=True)

    asyncio.run(scenario())
