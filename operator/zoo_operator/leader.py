"""Leader election over a coordination.k8s.io/v1 Lease: of several operator replicas, exactly one acts.

Imitates client-go's leaderelection package (k8s.io/client-go/tools/leaderelection): a candidate takes the
Lease when it is free or its holder stopped renewing it for leaseDurationSeconds, the leader renews it every
RETRY_SECONDS, and stops acting when it could not renew within RENEW_DEADLINE_SECONDS (before any other replica
may take over). Writes carry the Lease's resourceVersion, so two candidates cannot both win (the apiserver
answers 409 to the slower one). A leader that shuts down releases the Lease, so the next takes over at once.

`step` is the pure decision; `Elector` runs it against the API (through kube.py).

Configuration (environment, read by `from_env`): ZOO_LEADER_ELECTION_NAMESPACE (where the Lease lives; empty =
no election, the single replica acts), ZOO_LEADER_ELECTION_NAME (default zoo-operator), ZOO_POD_NAME (this
replica's identity; default host name and process id).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from zoo_operator import kube
from zoo_operator.podview import parse_time

log = logging.getLogger(__name__)
LEASE_SECONDS = 10
RENEW_DEADLINE_SECONDS = 7.0
RETRY_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class Config:
    """Where the Lease is and who this replica is."""

    namespace: str
    name: str = "zoo-operator"
    identity: str = ""


def from_env(env: Mapping[str, str] | None = None) -> Config | None:
    """The election's configuration, or None when ZOO_LEADER_ELECTION_NAMESPACE is unset (no election)."""
    env = os.environ if env is None else env
    namespace = env.get("ZOO_LEADER_ELECTION_NAMESPACE", "").strip()
    if not namespace:
        return None
    identity = env.get("ZOO_POD_NAME", "").strip() or f"{socket.gethostname()}-{os.getpid()}"
    return Config(namespace, env.get("ZOO_LEADER_ELECTION_NAME", "").strip() or "zoo-operator", identity)


def _micro_time(ts: float) -> str:
    """A MicroTime as the apiserver writes it (RFC 3339, microseconds, UTC)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def step(
    lease_spec: Mapping[str, Any] | None, identity: str, now: float, lease_seconds: int = LEASE_SECONDS
) -> dict[str, Any] | None:
    """The Lease spec to write now to hold (or take) the lease, or None when another holder's lease is live.

    `lease_spec` is the current spec (None when there is no Lease yet)."""
    spec = dict(lease_spec or {})
    holder = spec.get("holderIdentity") or ""
    renewed = parse_time(spec.get("renewTime")) or 0.0
    duration = float(spec.get("leaseDurationSeconds") or lease_seconds)
    mine = holder == identity
    if holder and not mine and now < renewed + duration:
        return None
    out = {"holderIdentity": identity, "leaseDurationSeconds": lease_seconds, "renewTime": _micro_time(now)}
    if mine:
        out["acquireTime"] = spec.get("acquireTime") or _micro_time(now)
        out["leaseTransitions"] = int(spec.get("leaseTransitions") or 0)
    else:
        out["acquireTime"] = _micro_time(now)
        out["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
    return out


class Elector:
    """Runs `lead` while this replica holds the Lease; cancels it as soon as it may not."""

    def __init__(
        self, cfg: Config, lead: Callable[[], Awaitable[None]], clock: Callable[[], float] = time.time
    ) -> None:
        self.cfg, self.lead, self.clock = cfg, lead, clock
        self.leading = False

    async def _try(self) -> bool:
        """One attempt to acquire or renew; True when this replica holds the Lease now."""
        lease = await kube.get_lease(self.cfg.namespace, self.cfg.name)
        spec = step((lease or {}).get("spec"), self.cfg.identity, self.clock())
        if spec is None:
            return False
        if lease is None:
            return await kube.create_lease(self.cfg.namespace, self.cfg.name, spec)
        return await kube.replace_lease(lease, spec)

    async def run(self) -> None:
        """Campaign, lead, and campaign again, until cancelled (then the Lease is released if held)."""
        task: asyncio.Task[None] | None = None
        last_renew = 0.0
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
                    # arrives as the attempt completes, and the elector would then never stop (seen in CI).
                    async with asyncio.timeout(RENEW_DEADLINE_SECONDS):
                        held = await self._try()
                except asyncio.CancelledError:
                    raise
                except kube.ERRORS as err:  # the apiserver is unreachable: keep leading until the deadline
                    log.warning("leader election: %s", err)
                    held = None
                now = self.clock()
                if held:
                    last_renew = now
                lost = held is False or (held is None and now - last_renew > RENEW_DEADLINE_SECONDS)
                if held and task is None:
                    log.info(
                        "leader election: %s leads (lease %s/%s)",
                        self.cfg.identity,
                        self.cfg.namespace,
                        self.cfg.name,
                    )
                    self.leading = True
                    task = asyncio.get_running_loop().create_task(self.lead())
                elif lost and task is not None:
                    log.warning("leader election: %s lost the lease; stopping", self.cfg.identity)
                    self.leading = False
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    task = None
                if task is not None and task.done():
                    task.result()  # the loop ended by itself: raise what it raised
                    return
                await asyncio.sleep(RETRY_SECONDS)
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await self._release()

    async def _release(self) -> None:
        try:
            lease = await kube.get_lease(self.cfg.namespace, self.cfg.name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.cfg.identity:
                spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1}
                await kube.replace_lease(lease, spec)
                log.info("leader election: %s released the lease", self.cfg.identity)
        except kube.ERRORS as err:  # shutting down: the lease expires by itself
            log.warning("leader election: could not release the lease: %s", err)
