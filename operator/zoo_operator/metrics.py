"""Prometheus metrics of the operator: counters of job transitions, served as text on ZOO_METRICS_PORT.

The registry is plain data (tested without a server); `serve` exposes it with aiohttp (already a kopf
dependency) at /metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from aiohttp import web

_HELP = {
    "zoo_jobs_created_total": "ZooTrainingJobs whose pods the operator created for the first time.",
    "zoo_jobs_succeeded_total": "ZooTrainingJobs that succeeded.",
    "zoo_jobs_failed_total": "ZooTrainingJobs that failed, by reason.",
    "zoo_job_restarts_total": "Whole-gang restarts.",
}


class Registry:
    """Counters keyed by (name, labels)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def inc(self, name: str, labels: Mapping[str, str] | None = None, amount: float = 1.0) -> None:
        """Add `amount` to a counter."""
        if name not in _HELP:
            raise KeyError(f"unknown metric {name}")
        key = (name, tuple(sorted((labels or {}).items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The current value of a counter (0 when never incremented)."""
        return self._values.get((name, tuple(sorted((labels or {}).items()))), 0.0)

    def render(self) -> str:
        """The Prometheus text exposition format."""
        lines = []
        for name, text in _HELP.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
            for (metric, labels), value in sorted(self._values.items()):
                if metric == name:
                    inner = ",".join(f'{k}="{v}"' for k, v in labels)
                    lines.append(f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


REGISTRY = Registry()


def observe_transition(old: Mapping[str, object], new: Mapping[str, object], registry: Registry = REGISTRY) -> None:
    """Count what changed between two statuses of one job."""
    before, after = old.get("phase"), new.get("phase")
    if before is None and after not in (None, "Failed"):
        registry.inc("zoo_jobs_created_total")
    if after != before and after == "Succeeded":
        registry.inc("zoo_jobs_succeeded_total")
    if after != before and after == "Failed":
        registry.inc("zoo_jobs_failed_total", {"reason": str(new.get("reason") or "Unknown")})
    restarts_before = old.get("restarts") if isinstance(old.get("restarts"), int) else 0
    restarts_after = new.get("restarts") if isinstance(new.get("restarts"), int) else 0
    if isinstance(restarts_before, int) and isinstance(restarts_after, int) and restarts_after > restarts_before:
        registry.inc("zoo_job_restarts_total", amount=restarts_after - restarts_before)


async def serve(port: int, registry: Registry = REGISTRY, host: str = "0.0.0.0") -> web.AppRunner:
    """Serve /metrics on host:port; returns the runner (call `cleanup()` to stop)."""
    async def handle(_: web.Request) -> web.Response:
        return web.Response(text=registry.render(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
