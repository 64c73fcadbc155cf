"""When an updated ConfigMap or Secret reaches a pod that already mounts it, as a real kubelet does it.

Kubernetes docs, "Configure a Pod to Use a ConfigMap" / "ConfigMaps" (Mounted ConfigMaps are updated
automatically): "the kubelet checks whether the mounted ConfigMap is fresh on every periodic sync ... the total
delay from the moment when the ConfigMap is updated to the moment when new keys are projected to the Pod can be
as long as the kubelet sync period + cache propagation delay, where the cache propagation delay depends on the
chosen cache type (configMapAndSecretChangeDetectionStrategy: Watch = watch propagation delay, Cache = ttl of the
cache)". The kubelet's pod worker resyncs a running pod every --sync-frequency (default 1m) stretched by up to
50 % (kubernetes pkg/kubelet/pod_workers.go, workerResyncIntervalJitterFactor = 0.5, wait.Jitter), so an update
lands 0-90 s later with the Watch strategy (the default); the Cache strategy serves an object up to its TTL old
(node annotation node.alpha.kubernetes.io/ttl), adding that. ../shared/ASCEND.md: typically 60-90 s.

A pod's FIRST mount is always fresh: registering a pod makes the kubelet's object store fetch the object again
(pkg/kubelet/util/manager/cache_based_manager.go AddReference: "This will trigger fetch on the next Get()").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

# kubelet defaults (KubeletConfiguration syncFrequency 1m; pod_workers.go jitter factor 0.5; Watch strategy: no
# TTL). What a fake Ascend node uses unless nodes.yaml says otherwise.
REAL_SYNC_SECONDS = 60.0
REAL_JITTER = 0.5
REAL_CACHE_TTL_SECONDS = 0.0
# The local kubelet's old behaviour (volumes refreshed about every second): only where nodes.yaml asks for it.
FAST_SYNC_SECONDS = 1.0


@dataclass(frozen=True)
class Propagation:
    """One node's ConfigMap/Secret update timing (nodes.yaml `configMapSync`)."""

    sync_seconds: float = REAL_SYNC_SECONDS
    """kubelet --sync-frequency: a running pod's volumes are rechecked this often (before jitter)."""
    jitter: float = REAL_JITTER
    """Each resync interval is stretched by up to this fraction (the pod worker's wait.Jitter factor)."""
    cache_ttl_seconds: float = REAL_CACHE_TTL_SECONDS
    """Cache strategy only: a sync may be served an object this old (0 with the Watch strategy)."""

    def interval(self, pod_uid: str) -> float:
        """The resync interval of one pod: sync_seconds * (1 + jitter * f), f in [0, 1) fixed by the pod's uid, so a
        run is reproducible while the pods of one gang still spread over the window as on a real node."""
        frac = int(hashlib.sha256(pod_uid.encode()).hexdigest()[:8], 16) / 0x1_0000_0000
        return self.sync_seconds * (1.0 + self.jitter * frac)

    @property
    def worst_case_seconds(self) -> float:
        """The longest an update can take to reach a mounted volume: a whole stretched interval plus the TTL."""
        return self.sync_seconds * (1.0 + self.jitter) + self.cache_ttl_seconds


# The fast path as a node setting (nodes.yaml `configMapSync: {syncSeconds: 1, jitter: 0}`).
FAST = Propagation(FAST_SYNC_SECONDS, 0.0, 0.0)


def parse(raw: dict[str, Any] | None, ascend: bool) -> Propagation:
    """nodes.yaml `configMapSync: {syncSeconds, jitter, cacheTtlSeconds}`; without it an Ascend node gets the real
    kubelet's defaults and any other node the fast path (its pods never wait on an updated ConfigMap)."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - {"syncSeconds", "jitter", "cacheTtlSeconds"})
    if unknown:
        raise ValueError(f"configMapSync: unknown keys {unknown} (syncSeconds, jitter, cacheTtlSeconds)")
    base = Propagation() if ascend else FAST
    values = {}
    for key, attr in (
        ("syncSeconds", "sync_seconds"),
        ("jitter", "jitter"),
        ("cacheTtlSeconds", "cache_ttl_seconds"),
    ):
        value = raw.get(key, getattr(base, attr))
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"configMapSync.{key}: must be a number of seconds >= 0, got {value!r}")
        values[attr] = float(value)
    if values["sync_seconds"] <= 0:
        raise ValueError("configMapSync.syncSeconds: must be > 0")
    return Propagation(**values)


@dataclass
class VolumeClock:
    """The update timing of one pod's ConfigMap/Secret volumes: which content each volume shows, and when.

    `offer` is called with what the API cache holds now; it answers the content to write into the volume, or None
    to leave the volume as it is. The first offer of a volume is written at once (a fresh first mount); later
    changes wait for the pod's next resync tick, and that tick writes the newest content seen at least
    cache_ttl_seconds before it (an older one if a newer change is still within the TTL)."""

    timing: Propagation
    pod_uid: str
    admitted: float
    """Monotonic time of the pod's first sync: its resync ticks are admitted + k * interval, k >= 1."""
    shown: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, list[tuple[float, Any]]] = field(default_factory=dict)
    checked: dict[str, float] = field(default_factory=dict)
    """Per volume, the last tick that already looked at its pending changes."""

    def last_tick(self, now: float) -> float | None:
        """The pod's latest resync tick at or before `now`, None before the first one."""
        step = self.timing.interval(self.pod_uid)
        n = int((now - self.admitted) // step)
        return self.admitted + n * step if n >= 1 else None

    def offer(self, volume: str, content: Any, now: float) -> Any | None:
        """The content to write into `volume` now, or None (unchanged, or the change is not due yet)."""
        if volume not in self.shown:
            self.shown[volume] = content
            return content
        queue = self.pending.setdefault(volume, [])
        latest = queue[-1][1] if queue else self.shown[volume]
        if content != latest:
            queue.append((now, content))
        tick = self.last_tick(now)
        if tick is None or tick <= self.checked.get(volume, self.admitted):
            return None
        self.checked[volume] = tick
        due = [i for i, (seen, _) in enumerate(queue) if seen + self.timing.cache_ttl_seconds <= tick]
        if not due:
            return None
        chosen = queue[due[-1]][1]
        del queue[: due[-1] + 1]
        if chosen == self.shown[volume]:
            return None
        self.shown[volume] = chosen
        return chosen
