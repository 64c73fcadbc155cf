"""Prometheus metrics (prometheus-client): transitions, per-job gauges, latency histograms, build info and
process metrics, scraped over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import socket

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from zoo_operator import metrics
from zoo_operator.podview import format_time

T0 = 1_800_000_000.0
JOB = {
    "metadata": {"namespace": "ml", "name": "demo", "creationTimestamp": format_time(T0)},
    "spec": {"model": "resnet50"},
}
LABELS = {"namespace": "ml", "job": "demo", "model": "resnet50"}


def running(at: float) -> dict:
    return {"type": "Running", "status": "True", "lastTransitionTime": format_time(at)}


def test_transitions_are_counted() -> None:
    reg = metrics.Registry(process=False)
    metrics.observe_transition({}, {"phase": "Pending"}, reg)
    metrics.observe_transition({"phase": "Pending"}, {"phase": "Running"}, reg)
    metrics.observe_transition(
        {"phase": "Running", "restarts": 0}, {"phase": "Restarting", "restarts": 1}, reg
    )
    metrics.observe_transition(
        {"phase": "Running", "restarts": 1},
        {"phase": "Failed", "reason": "DeadlineExceeded", "restarts": 1},
        reg,
    )
    metrics.observe_transition({"phase": "Failed"}, {"phase": "Failed", "reason": "DeadlineExceeded"}, reg)
    metrics.observe_transition({}, {"phase": "Failed", "reason": "InvalidSpec"}, reg)
    assert reg.value("zoo_jobs_created_total") == 1
    assert reg.value("zoo_job_restarts_total") == 1
    assert reg.value("zoo_jobs_failed_total", {"reason": "DeadlineExceeded"}) == 1
    assert reg.value("zoo_jobs_failed_total", {"reason": "InvalidSpec"}) == 1
    text = reg.render()
    assert 'zoo_jobs_failed_total{reason="DeadlineExceeded"} 1.0' in text
    assert "# TYPE zoo_jobs_succeeded_total counter" in text


def test_job_gauges_and_histograms_follow_the_status() -> None:
    reg = metrics.Registry(process=False)
    pending = {"phase": "Pending", "restarts": 0, "ranks": {"pending": 2, "active": 0}}
    run = {
        "phase": "Running",
        "restarts": 0,
        "conditions": [running(T0 + 12)],
        "ranks": {"pending": 0, "active": 2, "succeeded": 0, "failed": 0},
    }
    step = {
        **run,
        "progress": {
            "epoch": 1,
            "epochs": 3,
            "step": 4,
            "loss": 2.5,
            "imagesPerSecond": 40.0,
            "updateTime": format_time(T0 + 50),
        },
    }
    epoch2 = {
        **step,
        "progress": {**step["progress"], "epoch": 2, "step": 1, "updateTime": format_time(T0 + 80)},
        "history": [{"epoch": 1, "top1": 0.25}],
    }
    done = {
        **epoch2,
        "phase": "Succeeded",
        "completionTime": format_time(T0 + 200),
        "result": {"top1": 0.5},
        "conditions": [{**running(T0 + 12), "status": "False"}],
    }
    states = [{}, pending, run, step, epoch2, done]
    for old, new in itertools.pairwise(states):
        metrics.observe_job(JOB, old, new, reg)
    assert reg.value("zoo_job_epoch", LABELS) == 2 and reg.value("zoo_job_epochs", LABELS) == 3
    assert reg.value("zoo_job_loss", LABELS) == 2.5 and reg.value("zoo_job_images_per_second", LABELS) == 40
    assert reg.value("zoo_job_top1", LABELS) == 0.5  # the result wins over the last evaluation (0.25)
    assert reg.value("zoo_job_ranks", {**LABELS, "state": "active"}) == 2
    assert reg.value("zoo_job_phase", {**LABELS, "phase": "Succeeded"}) == 1
    assert reg.value("zoo_job_phase", {**LABELS, "phase": "Running"}) == 0
    # Each latency observed once, with the right value (bucket bounds bracket it).
    assert reg.value("zoo_job_apply_to_running_seconds_count") == 1
    assert reg.value("zoo_job_apply_to_running_seconds_sum") == 12
    assert reg.value("zoo_job_apply_to_first_step_seconds_sum") == 50
    assert reg.value("zoo_job_apply_to_first_step_seconds_count") == 1
    assert reg.value("zoo_job_duration_seconds_sum", {"outcome": "Succeeded"}) == 200
    assert reg.value("zoo_job_duration_seconds_bucket", {"outcome": "Succeeded", "le": "120.0"}) == 0
    assert reg.value("zoo_job_duration_seconds_bucket", {"outcome": "Succeeded", "le": "300.0"}) == 1
    # A restart does not count as a second "all ranks running" or "first step".
    restarted = {**run, "restarts": 1, "conditions": [running(T0 + 300)], "progress": {"step": 1}}
    metrics.observe_job(
        JOB, {**step, "conditions": [{**running(T0 + 12), "status": "False"}]}, restarted, reg
    )
    assert reg.value("zoo_job_apply_to_running_seconds_count") == 1
    assert reg.value("zoo_job_apply_to_first_step_seconds_count") == 1
    # Deleting the job drops its series; other jobs keep theirs.
    other = {"metadata": {**JOB["metadata"], "name": "other"}, "spec": JOB["spec"]}
    metrics.observe_job(other, {}, step, reg)
    metrics.forget_job("ml", "demo", reg)
    assert 'job="demo"' not in reg.render() and reg.value("zoo_job_epoch", {**LABELS, "job": "other"}) == 1


def test_every_advertised_name_is_exported() -> None:
    reg = metrics.Registry()
    metrics.observe_job(
        JOB,
        {},
        {
            "phase": "Running",
            "conditions": [running(T0 + 1)],
            "restarts": 0,
            "ranks": {"active": 1},
            "completionTime": format_time(T0 + 2),
            "progress": {
                "epoch": 1,
                "epochs": 1,
                "step": 1,
                "loss": 1.0,
                "imagesPerSecond": 1.0,
                "updateTime": format_time(T0 + 1),
            },
            "result": {"top1": 0.1},
        },
        reg,
    )
    metrics.observe_job(
        JOB,
        {"phase": "Running"},
        {"phase": "Failed", "reason": "X", "restarts": 1, "completionTime": format_time(T0 + 2)},
        reg,
    )
    reg.succeeded.inc()
    exported = set()
    for family in text_string_to_metric_families(reg.render()):
        exported |= {sample.name for sample in family.samples}
    missing = [name for name in metrics.NAMES if name not in exported and f"{name}_count" not in exported]
    assert missing == []
    assert (
        reg.value(
            "zoo_operator_build_info",
            {"version": metrics.VERSION, "python": metrics.platform.python_version()},
        )
        == 1
    )


def test_metrics_endpoint_serves_the_registry() -> None:
    reg = metrics.Registry()
    reg.succeeded.inc()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scrape() -> tuple[str, str]:
        runner = await metrics.serve(port, reg)
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/metrics") as resp,
            ):
                assert resp.status == 200
                return resp.headers["Content-Type"], await resp.text()
        finally:
            await runner.cleanup()

    ctype, text = asyncio.run(scrape())
    assert ctype.startswith("text/plain") and "version=" in ctype
    assert "zoo_jobs_succeeded_total 1.0" in text and "process_resident_memory_bytes" in text
