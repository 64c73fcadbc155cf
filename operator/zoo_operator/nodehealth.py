"""One shared view of node health for every job's pass (issue 25): plain data, fed by two watches.

Issue 23 made every pass of every running job GET each node of its pods, and for Ascend jobs each node's
device-info ConfigMap: 100 jobs on the same 16 nodes made 100 times the reads needed, and a job's reads grew
with its ranks (64 per pass at 256 ranks). Instead, `nodewatch.py` lists and watches the Nodes and the
ConfigMaps of kube-system (as Kubernetes' informers do: a paginated list, then a watch from its
resourceVersion, relisted on 410 Gone) and applies each event here; `observe.read_health` reads this index
and makes no request for a node it holds. What is kept is the health only, not the objects: per node its
Ready condition (faults.node_ready) and the NPUs its device plugin reports unhealthy (faults.unhealthy_npus),
so a cluster of 5000 nodes costs a few hundred KiB.

When the index may be used (`usable`): after a list, while the watch is open, and for MAX_STALE_SECONDS after
it was lost (it reconnects from its resourceVersion within its retry delay, so no event is missed). Otherwise
observe falls back to the per-node reads (an older chart without list/watch, an apiserver that is away). A
node the index does not hold (created since, or gone) is read by name: absence alone must not pass for a
lost node. A ConfigMap it does not hold is no fault, as a plugin that reports nothing reports no fault.

The watches run only while someone asks (`want`, by each pass of a running job): a cluster whose jobs all
finished keeps no watch open (nodewatch.IDLE_SECONDS).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from zoo_operator import faults

# The index may be read this long after its watch was lost (the watch reconnects from its resourceVersion
# within nodewatch's retry delay, so it misses nothing). Kubernetes marks a silent node NotReady only after
# --node-monitor-grace-period (50 s by default), so a few seconds more on top of that change nothing.
MAX_STALE_SECONDS = 10.0

Ready = tuple[bool | None, str]


@dataclasses.dataclass
class Source:
    """One watched list (Nodes, or device-info ConfigMaps): whether it is listed and its watch open."""

    listed: bool = False
    connected: bool = False
    lost_at: float = 0.0  # when the watch was last lost (clock seconds)
    wanted_at: float = float("-inf")  # when a pass last asked for it
    forbidden: bool = False  # the list was refused (RBAC): the per-node reads go on

    def usable(self, now: float) -> bool:
        """Whether what the list holds may be read now (see the module doc)."""
        return self.listed and (self.connected or now - self.lost_at <= MAX_STALE_SECONDS)

    def lost(self, now: float) -> None:
        """The watch ended or failed; the data stays usable for MAX_STALE_SECONDS."""
        if self.connected:
            self.lost_at = now
        self.connected = False


@dataclasses.dataclass
class HealthIndex:
    """Node name -> Ready, and node name -> resource -> {physical NPU id: reason} (only nodes with faults)."""

    clock: Callable[[], float] = time.time
    ready: dict[str, Ready] = dataclasses.field(default_factory=dict)
    npus: dict[str, dict[str, dict[int, str]]] = dataclasses.field(default_factory=dict)
    nodes: Source = dataclasses.field(default_factory=Source)
    devices: Source = dataclasses.field(default_factory=Source)

    # -- what the passes do ------------------------------------------------------------------------------------

    def want(self, devices: bool) -> None:
        """A pass of a running job needs the nodes (and, for Ascend jobs, the device info)."""
        now = self.clock()
        self.nodes.wanted_at = now
        if devices:
            self.devices.wanted_at = now

    def lookup(
        self, names: Sequence[str], resource: str | None
    ) -> tuple[dict[str, Ready], dict[str, dict[int, str]], list[str], list[str]]:
        """(Ready of the nodes the index holds, faulty NPUs of `resource` per node, nodes whose Node must be
        read by name, nodes whose device-info ConfigMap must be): all of them while the list is not usable;
        Nodes also where the index does not hold the node. Without `resource`, no device info is asked."""
        now = self.clock()
        if self.nodes.usable(now):
            ready = {n: self.ready[n] for n in names if n in self.ready}
            read_nodes = [n for n in names if n not in self.ready]
        else:
            ready, read_nodes = {}, list(names)
        unhealthy: dict[str, dict[int, str]] = {}
        read_devices: list[str] = []
        if resource and self.devices.usable(now):
            unhealthy = {n: dict(self.npus.get(n, {}).get(resource, {})) for n in names}
        elif resource:
            read_devices = list(names)
        return ready, unhealthy, read_nodes, read_devices

    # -- what the watches do -----------------------------------------------------------------------------------

    def relisted_nodes(self, items: Iterable[Mapping[str, Any]]) -> None:
        """A (re)list of all Nodes: what it holds replaces the index's nodes."""
        self.ready = {name: faults.node_ready(obj) for name, obj in _named(items)}
        self.nodes.listed = True

    def node_event(self, kind: str, obj: Mapping[str, Any]) -> None:
        """One watch event of a Node (ADDED, MODIFIED, DELETED; BOOKMARK and ERROR are the watch's)."""
        name = _name(obj)
        if not name:
            return
        if kind == "DELETED":
            self.ready.pop(name, None)
        elif kind in ("ADDED", "MODIFIED"):
            self.ready[name] = faults.node_ready(obj)

    def relisted_config_maps(self, items: Iterable[Mapping[str, Any]]) -> None:
        """A (re)list of kube-system's ConfigMaps: the device-info ones replace the index's NPU faults."""
        self.npus = {}
        for _, obj in _named(items):
            self.config_map_event("ADDED", obj)
        self.devices.listed = True

    def config_map_event(self, kind: str, obj: Mapping[str, Any]) -> None:
        """One watch event of a kube-system ConfigMap; only `mindx-dl-deviceinfo-<node>` ones count."""
        node = faults.device_info_node(_name(obj))
        if node is None:
            return
        found = faults.unhealthy_by_resource(obj.get("data")) if kind != "DELETED" else {}
        if found:
            self.npus[node] = found
        elif kind in ("ADDED", "MODIFIED", "DELETED"):
            self.npus.pop(node, None)

    def forget(self, source: Source) -> None:
        """Nobody asked for a while: the watch is closed and what it held is dropped."""
        source.listed = source.connected = False
        if source is self.nodes:
            self.ready = {}
        else:
            self.npus = {}


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, Mapping) else ""


def _named(items: Iterable[Mapping[str, Any]]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for obj in items:
        name = _name(obj)
        if name:
            yield name, obj


# The one index of this operator process: the watches feed it, every pass reads it (observe.read_health).
INDEX = HealthIndex()
