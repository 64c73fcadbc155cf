"""The client-side sweep controller: create the trials of a sweep, keep at most `parallel` of them unfinished
(unless the template names a Kueue queue: then all are created at once and Kueue admits them as quota allows),
and stop losers by the median rule (zoo_operator.client.sweep.losers) by setting spec.runPolicy.suspend, which
keeps the trial and its status.history for `compare` while its pods go. See docs/sweeps.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zoo_operator import conditions as c
from zoo_operator.client.api import ZooClient, validate
from zoo_operator.client.sweep import (
    ANNOTATION_PARAMS,
    LABEL_SWEEP,
    StopRule,
    check_name,
    losers,
    trial_body,
    trial_name,
)

ANNOTATION_STOPPED = "modelzoo.io/sweep-stopped"  # why the sweep stopped this trial (the rule, as text)


@dataclass(frozen=True)
class Sweep:
    """A sweep: its name, the job template, the points to try, and how to run them."""

    name: str
    template: Mapping[str, Any]
    points: Sequence[Mapping[str, Any]]
    parallel: int = 2
    """Trials unfinished at once when no Kueue queue admits them (spec.scheduling.queue unset)."""
    stop: StopRule | None = None
    """Median stopping of losers; None runs every trial to the end."""

    def bodies(self) -> list[dict[str, Any]]:
        """Every trial's job object, validated (InvalidSpec names the trial's field)."""
        check_name(self.name)
        out = []
        for i, point in enumerate(self.points):
            body = trial_body(self.template, self.name, i, point)
            validate(body)
            out.append(body)
        return out

    @property
    def queued(self) -> bool:
        """Whether Kueue admits the trials (the template names a queue)."""
        return bool(((self.template.get("spec") or {}).get("scheduling") or {}).get("queue"))


def _done(job: Mapping[str, Any]) -> bool:
    status = job.get("status") or {}
    stopped = ANNOTATION_STOPPED in ((job.get("metadata") or {}).get("annotations") or {})
    return stopped or status.get("phase") in c.FINISHED_PHASES


def run(
    zc: ZooClient,
    sweep: Sweep,
    *,
    timeout: float = 3600.0,
    interval: float = 5.0,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run `sweep` to the end (every trial finished or stopped) and return its trials. Trials that exist
    already (a rerun of the same sweep) are adopted, not recreated."""
    bodies = sweep.bodies()
    existing = {j["metadata"]["name"] for j in zc.list_jobs({LABEL_SWEEP: sweep.name})}
    pending = [b for b in bodies if b["metadata"]["name"] not in existing]
    deadline = time.monotonic() + timeout
    while True:
        jobs = {j["metadata"]["name"]: j for j in zc.list_jobs({LABEL_SWEEP: sweep.name})}
        active = [n for n, j in jobs.items() if not _done(j)]
        room = len(pending) if sweep.queued else max(0, sweep.parallel - len(active))
        for body in pending[:room]:
            zc.create(body=body)
            say(f"created {body['metadata']['name']} {body['metadata']['annotations'][ANNOTATION_PARAMS]}")
        pending = pending[room:]
        if sweep.stop is not None:
            histories = {n: (j.get("status") or {}).get("history") or [] for n, j in jobs.items()}
            finished = frozenset(n for n, j in jobs.items() if _done(j))
            for name in losers(histories, sweep.stop, finished):
                why = f"median rule: best {sweep.stop.metric} below the median of the others"
                zc.patch(
                    name,
                    {
                        "metadata": {"annotations": {ANNOTATION_STOPPED: why}},
                        "spec": {"runPolicy": {"suspend": True}},
                    },
                )
                say(f"stopped {name} ({why})")
        if not pending and all(_done(j) for j in jobs.values()) and len(jobs) >= len(bodies):
            return sorted(jobs.values(), key=lambda j: j["metadata"]["name"])
        if time.monotonic() > deadline:
            phases = {n: (j.get("status") or {}).get("phase") for n, j in jobs.items()}
            raise TimeoutError(
                f"sweep {sweep.name}: not finished after {timeout:g} s; trials: {phases}, "
                f"{len(pending)} not created yet"
            )
        time.sleep(interval)


def trial_names(sweep: Sweep) -> list[str]:
    """The job names of the sweep's trials, in index order."""
    return [trial_name(sweep.name, i) for i in range(len(sweep.points))]
