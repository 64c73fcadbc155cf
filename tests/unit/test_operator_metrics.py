"""Prometheus counters of job transitions, and their exposition over HTTP."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from zoo_operator import metrics


def test_transitions_are_counted() -> None:
    reg = metrics.Registry()
    metrics.observe_transition({}, {"phase": "Pending"}, reg)
    metrics.observe_transition({"phase": "Pending"}, {"phase": "Running"}, reg)
    metrics.observe_transition({"phase": "Running", "restarts": 0}, {"phase": "Restarting", "restarts": 1}, reg)
    metrics.observe_transition({"phase": "Running", "restarts": 1}, {"phase": "Failed", "reason": "DeadlineExceeded",
                                                                     "restarts": 1}, reg)
    metrics.observe_transition({"phase": "Failed"}, {"phase": "Failed", "reason": "DeadlineExceeded"}, reg)
    metrics.observe_transition({}, {"phase": "Failed", "reason": "InvalidSpec"}, reg)
    assert reg.value("zoo_jobs_created_total") == 1
    assert reg.value("zoo_job_restarts_total") == 1
    assert reg.value("zoo_jobs_failed_total", {"reason": "DeadlineExceeded"}) == 1
    assert reg.value("zoo_jobs_failed_total", {"reason": "InvalidSpec"}) == 1
    text = reg.render()
    assert 'zoo_jobs_failed_total{reason="DeadlineExceeded"} 1' in text
    assert "# TYPE zoo_jobs_succeeded_total counter" in text
    with pytest.raises(KeyError):
        reg.inc("nope")


def test_metrics_endpoint_serves_the_registry() -> None:
    reg = metrics.Registry()
    reg.inc("zoo_jobs_succeeded_total")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scrape() -> str:
        runner = await metrics.serve(port, reg)
        try:
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 200
                return await resp.text()
        finally:
            await runner.cleanup()

    assert "zoo_jobs_succeeded_total 1" in asyncio.run(scrape())
