"""Prometheus metrics of the operator (prometheus-client), served on ZOO_METRICS_PORT at /metrics.

- counters of job transitions (created, succeeded, failed by reason, restarts);
- per-job gauges labelled namespace/job/model: epoch, step, loss, top-1, images/s, restarts, ranks by phase,
  phase; removed when the job is deleted;
- histograms: apply -> all ranks running, apply -> first step, job duration (by outcome);
- operator build info, and the process/platform metrics of prometheus-client.

Everything is observed from two successive statuses of a job (`observe_job`), so it is tested without a
cluster; `serve` exposes the registry with aiohttp (already a kopf dependency). NAMES lists every exported
family, so the chart's dashboard can be checked against it.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from zoo_operator.podview import parse_time
from zoo_operator.settings import VERSION

JOB_LABELS = ("namespace", "job", "model")
# Seconds: from a few seconds (a CPU job on a warm node) to hours (a queued multi-node job).
LATENCY_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf"))
DURATION_BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200, float("inf"))
RANK_STATES = ("pending", "active", "succeeded", "failed")
PHASES = ("Pending", "Running", "Restarting", "Succeeded", "Failed", "Suspended")


class Registry:
    """The operator's metric families in their own CollectorRegistry (tests make fresh ones)."""

    def __init__(self, process: bool = True) -> None:
        reg = self.registry = CollectorRegistry()
        self.created = Counter(
            "zoo_jobs_created",
            "ZooTrainingJobs whose pods the operator created for the first time.",
            registry=reg,
        )
        self.succeeded = Counter("zoo_jobs_succeeded", "ZooTrainingJobs that succeeded.", registry=reg)
        self.failed = Counter(
            "zoo_jobs_failed", "ZooTrainingJobs that failed, by reason.", ["reason"], registry=reg
        )
        self.restarts_total = Counter("zoo_job_restarts", "Whole-gang restarts, all jobs.", registry=reg)
        self.epoch = Gauge(
            "zoo_job_epoch", "Current epoch of the job (rank 0, 1-based).", JOB_LABELS, registry=reg
        )
        self.epochs = Gauge("zoo_job_epochs", "Epochs the job trains.", JOB_LABELS, registry=reg)
        self.step = Gauge(
            "zoo_job_step", "Step within the current epoch (rank 0, 1-based).", JOB_LABELS, registry=reg
        )
        self.loss = Gauge("zoo_job_loss", "Latest training loss (rank 0).", JOB_LABELS, registry=reg)
        self.top1 = Gauge(
            "zoo_job_top1", "Top-1 accuracy of the latest evaluation (0..1).", JOB_LABELS, registry=reg
        )
        self.images = Gauge(
            "zoo_job_images_per_second",
            "Training throughput, all ranks (images/s).",
            JOB_LABELS,
            registry=reg,
        )
        self.restarts = Gauge(
            "zoo_job_restarts_current", "Whole-gang restarts of the job so far.", JOB_LABELS, registry=reg
        )
        self.ranks = Gauge(
            "zoo_job_ranks", "Worker pods of the job by state.", [*JOB_LABELS, "state"], registry=reg
        )
        self.phase = Gauge(
            "zoo_job_phase",
            "1 for the job's current phase, 0 for the others.",
            [*JOB_LABELS, "phase"],
            registry=reg,
        )
        self.to_running = Histogram(
            "zoo_job_apply_to_running_seconds",
            "From a job's creation to all of its ranks running, first attempt.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.to_first_step = Histogram(
            "zoo_job_apply_to_first_step_seconds",
            "From a job's creation to its first training step (includes graph compilation).",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.duration = Histogram(
            "zoo_job_duration_seconds",
            "From a job's creation to its completion, by outcome.",
            ["outcome"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.build = Gauge(
            "zoo_operator_build_info",
            "Always 1; the labels say which operator runs.",
            ["version", "python"],
            registry=reg,
        )
        self.build.labels(VERSION, platform.python_version()).set(1)
        self._per_job = (self.epoch, self.epochs, self.step, self.loss, self.top1, self.images, self.restarts)
        if process:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The current value of a sample (0 when absent), e.g. value("zoo_jobs_created_total")."""
        got = self.registry.get_sample_value(name, dict(labels or {}))
        return 0.0 if got is None else got

    def render(self) -> str:
        """The Prometheus text exposition format."""
        return generate_latest(self.registry).decode()

    def forget_job(self, namespace: str, name: str) -> None:
        """Drop every per-job series of a deleted job (its model label is whatever it was)."""
        for gauge in (*self._per_job, self.ranks, self.phase):
            for labels in [k for k in _label_sets(gauge) if k[0] == namespace and k[1] == name]:
                gauge.remove(*labels)


def _label_sets(gauge: Gauge) -> list[tuple[str, ...]]:
    # prometheus-client keeps children in `_metrics` keyed by label values; collect() is the public view.
    out = []
    for family in gauge.collect():
        names = None
        for sample in family.samples:
            names = names or list(sample.labels)
            out.append(tuple(sample.labels[n] for n in names))
    return out


REGISTRY = Registry()
NAMES = (
    "zoo_jobs_created_total",
    "zoo_jobs_succeeded_total",
    "zoo_jobs_failed_total",
    "zoo_job_restarts_total",
    "zoo_job_epoch",
    "zoo_job_epochs",
    "zoo_job_step",
    "zoo_job_loss",
    "zoo_job_top1",
    "zoo_job_images_per_second",
    "zoo_job_restarts_current",
    "zoo_job_ranks",
    "zoo_job_phase",
    "zoo_job_apply_to_running_seconds",
    "zoo_job_apply_to_first_step_seconds",
    "zoo_job_duration_seconds",
    "zoo_operator_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "python_info",
)


def observe_transition(old: Mapping[str, Any], new: Mapping[str, Any], registry: Registry = REGISTRY) -> None:
    """Count what changed between two statuses of one job."""
    before, after = old.get("phase"), new.get("phase")
    if before is None and after not in (None, "Failed"):
        registry.created.inc()
    if after != before and after == "Succeeded":
        registry.succeeded.inc()
    if after != before and after == "Failed":
        registry.failed.labels(str(new.get("reason") or "Unknown")).inc()
    restarts_before = old.get("restarts") if isinstance(old.get("restarts"), int) else 0
    restarts_after = new.get("restarts") if isinstance(new.get("restarts"), int) else 0
    if (
        isinstance(restarts_before, int)
        and isinstance(restarts_after, int)
        and restarts_after > restarts_before
    ):
        registry.restarts_total.inc(restarts_after - restarts_before)


def _cond_since(st: Mapping[str, Any], ctype: str) -> float | None:
    for cond in st.get("conditions") or []:
        if cond.get("type") == ctype and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime"))
    return None


def _has_cond(st: Mapping[str, Any], ctype: str) -> bool:
    return any(cond.get("type") == ctype for cond in st.get("conditions") or [])


def observe_job(
    body: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any], registry: Registry = REGISTRY
) -> None:
    """Transitions, per-job gauges and latency histograms from the status `old` -> `new` of job `body`."""
    observe_transition(old, new, registry)
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    labels = (str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(spec.get("model") or ""))
    prog = new.get("progress") or {}
    for gauge, value in (
        (registry.epoch, prog.get("epoch")),
        (registry.epochs, prog.get("epochs")),
        (registry.step, prog.get("step")),
        (registry.loss, prog.get("loss")),
        (
            registry.top1,
            (new.get("result") or {}).get("top1")
            if (new.get("result") or {}).get("top1") is not None
            else next((e["top1"] for e in reversed(new.get("history") or []) if "top1" in e), None),
        ),
        (registry.images, prog.get("imagesPerSecond")),
        (registry.restarts, new.get("restarts")),
    ):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            gauge.labels(*labels).set(value)
    ranks = new.get("ranks") or {}
    for state in RANK_STATES:
        if isinstance(ranks.get(state), int):
            registry.ranks.labels(*labels, state).set(ranks[state])
    if new.get("phase"):
        for phase in PHASES:
            registry.phase.labels(*labels, phase).set(1 if phase == new.get("phase") else 0)

    created = parse_time(meta.get("creationTimestamp"))
    if created is None:
        return
    # First time all ranks run: the Running condition appears (a restart flips an existing one back to True).
    running = _cond_since(new, "Running")
    if running is not None and not _has_cond(old, "Running"):
        registry.to_running.observe(max(0.0, running - created))
    # First step: progress gets a step for the first time (no earlier step, no restart yet).
    old_prog = old.get("progress") or {}
    if "step" in prog and "step" not in old_prog and not old.get("history") and not new.get("restarts"):
        first = parse_time(prog.get("updateTime"))
        if first is not None:
            registry.to_first_step.observe(max(0.0, first - created))
    phase = new.get("phase")
    if phase in ("Succeeded", "Failed") and old.get("phase") != phase:
        done = parse_time(new.get("completionTime"))
        if done is not None:
            registry.duration.labels(str(phase)).observe(max(0.0, done - created))


def forget_job(namespace: str, name: str, registry: Registry = REGISTRY) -> None:
    """Drop a deleted job's series."""
    registry.forget_job(namespace, name)


async def serve(port: int, registry: Registry = REGISTRY, host: str = "0.0.0.0") -> web.AppRunner:
    """Serve /metrics on host:port; returns the runner (call `cleanup()` to stop)."""

    async def handle(_: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(registry.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
