"""The sweep controller's loop against an in-memory stand-in for ZooClient (the client's own boundary): at most
`parallel` trials unfinished without a queue, all at once with a Kueue queue, losers suspended by the median
rule and counted as done, existing trials adopted on a rerun."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
from operator_jobs import job

from zoo_operator.client import runner
from zoo_operator.client.api import ZooClient
from zoo_operator.client.sweep import LABEL_SWEEP, StopRule


class Cluster(ZooClient):
    """Jobs in a dict; each poll (list_jobs) advances every unsuspended job one epoch of `curves[name]`."""

    def __init__(
        self, curves: Mapping[str, list[float]], existing: list[dict[str, Any]] | None = None
    ) -> None:
        self.namespace, self.curves = "ns", curves
        self.jobs: dict[str, dict[str, Any]] = {j["metadata"]["name"]: j for j in existing or []}
        self.created: list[str] = []
        self.most_active = 0

    def create(
        self, name: str | None = None, *, body: Mapping[str, Any] | None = None, **_: Any
    ) -> dict[str, Any]:
        assert body is not None
        stored = copy.deepcopy(dict(body))
        stored["status"] = {"phase": "Running", "history": []}
        self.jobs[stored["metadata"]["name"]] = stored
        self.created.append(stored["metadata"]["name"])
        return stored

    def patch(self, name: str, patch: Mapping[str, Any]) -> None:
        j = self.jobs[name]
        j["metadata"].setdefault("annotations", {}).update(patch["metadata"]["annotations"])
        j["spec"]["runPolicy"] = patch["spec"]["runPolicy"]
        j["status"]["phase"] = "Suspended"

    def list_jobs(self, selector: Any = "") -> list[dict[str, Any]]:
        active = 0
        for name, j in self.jobs.items():
            st = j["status"]
            if st["phase"] != "Running":
                continue
            active += 1
            curve = self.curves[name]
            st["history"].append({"epoch": len(st["history"]) + 1, "top1": curve[len(st["history"])]})
            if len(st["history"]) == len(curve):
                st["phase"] = "Succeeded"
        self.most_active = max(self.most_active, active)
        assert selector == {LABEL_SWEEP: "s"}
        return sorted(self.jobs.values(), key=lambda j: j["metadata"]["name"])


POINTS = [{"lr_max": v} for v in (0.4, 0.3, 0.2, 0.1)]


def test_parallel_limit_without_a_queue() -> None:
    zc = Cluster({f"s-{i}": [0.1, 0.2, 0.3] for i in range(4)})
    done = runner.run(zc, runner.Sweep("s", job(), POINTS, parallel=2), interval=0, say=lambda _: None)
    assert [j["metadata"]["name"] for j in done] == ["s-0", "s-1", "s-2", "s-3"]
    assert {j["status"]["phase"] for j in done} == {"Succeeded"}
    assert zc.most_active == 2


def test_a_queue_gets_every_trial_at_once() -> None:
    zc = Cluster({f"s-{i}": [0.1, 0.2] for i in range(4)})
    runner.run(
        zc,
        runner.Sweep("s", job(scheduling={"queue": "team"}), POINTS, parallel=1),
        interval=0,
        say=lambda _: None,
    )
    assert zc.most_active == 4


def test_median_rule_suspends_the_losers() -> None:
    # After epoch 1: s-2 (0.1) is below median(0.5, 0.48, 0.45) and s-3 (0.45) below median(0.5, 0.48, 0.1);
    # s-1 (0.48) is above median(0.5, 0.1, 0.45). The others' median is the rule: the lower half goes.
    curves = {
        "s-0": [0.5, 0.6, 0.7],
        "s-1": [0.48, 0.5, 0.6],
        "s-2": [0.1, 0.1, 0.1],
        "s-3": [0.45, 0.55, 0.65],
    }
    zc = Cluster(curves)
    said: list[str] = []
    done = runner.run(
        zc,
        runner.Sweep("s", job(), POINTS, parallel=4, stop=StopRule("top1", after=1)),
        interval=0,
        say=said.append,
    )
    phases = {j["metadata"]["name"]: j["status"]["phase"] for j in done}
    assert phases == {"s-0": "Succeeded", "s-1": "Succeeded", "s-2": "Suspended", "s-3": "Suspended"}
    stopped = zc.jobs["s-2"]
    assert stopped["spec"]["runPolicy"]["suspend"] is True
    assert "median rule" in stopped["metadata"]["annotations"][runner.ANNOTATION_STOPPED]
    assert any(line.startswith("stopped s-2") for line in said)


def test_rerun_adopts_existing_trials() -> None:
    first = Cluster({f"s-{i}": [0.1] for i in range(4)})
    runner.run(first, runner.Sweep("s", job(), POINTS[:2], parallel=2), interval=0, say=lambda _: None)
    again = Cluster({f"s-{i}": [0.1] for i in range(4)}, existing=list(first.jobs.values()))
    runner.run(again, runner.Sweep("s", job(), POINTS, parallel=2), interval=0, say=lambda _: None)
    assert again.created == ["s-2", "s-3"]


def test_timeout_names_the_trials() -> None:
    zc = Cluster({f"s-{i}": [0.1] * 1000 for i in range(4)})
    with pytest.raises(TimeoutError, match="sweep s: not finished .* 2 not created yet"):
        runner.run(
            zc, runner.Sweep("s", job(), POINTS, parallel=2), timeout=0.05, interval=0.01, say=lambda _: None
        )
