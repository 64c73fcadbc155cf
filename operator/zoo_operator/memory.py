"""The data of a pass: what the operator remembers of one job between passes (kopf's per-object memo) and
what one pass observed of it (`Observation`: observe.py -> planner.py), with their plain helpers.

Everything here can be rebuilt from the cluster after an operator restart. Who writes which part:
- the log follower (runner.py) folds rank 0's streamed lines with `feed_lines`: an input channel, not a pass;
- a pass changes it only through its Plan's `MemoryUpdate`, which the executor applies (planner.py is pure);
- the executor records the outcomes of its writes (last status write, refusals, a missing PodGroup API).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from zoo_operator import admission, history, logparse, ranktable, render, spec
from zoo_operator import conditions as c
from zoo_operator.podview import PodView


@dataclasses.dataclass
class PodLog:
    """What the operator has read from one pod's log."""

    uid: str
    lines: list[str] = dataclasses.field(default_factory=list)
    progress: dict[str, Any] = dataclasses.field(default_factory=dict)
    rank: int | None = None
    result: dict[str, Any] | None = None
    final: bool = False
    checkpoints: dict[str, Any] = dataclasses.field(default_factory=dict)  # logparse.fold_checkpoints
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # per-epoch (history.py)

    def folded(self, events: list[dict[str, Any]], **changes: Any) -> PodLog:
        """A copy with parsed JSON events folded in: progress, rank, result record, checkpoints, history.

        A server pod's log (issue 21) holds several ranks' events: only its lowest rank's are folded."""
        rank = logparse.lead_rank(events, self.rank)
        events = [ev for ev in events if ev.get("rank") == rank]
        return dataclasses.replace(
            self,
            progress=logparse.fold_progress(self.progress, events),
            rank=rank,
            result=logparse.record_from_events(events) or self.result,
            checkpoints=logparse.fold_checkpoints(self.checkpoints, events),
            history=history.fold(self.history, events),  # console: per-epoch history (issue 12)
            **changes,
        )


@dataclasses.dataclass(frozen=True)
class TableCache:
    """The rank table as last built, and the device inputs it was built from (rebuilt only when they change)."""

    inputs: tuple[Any, ...] | None = None
    built: dict[str, str] | None = None
    devices: int = 0
    rank0: str = ""  # the pod holding rank 0 in that table (ranktable.order)
    ranks: tuple[
        tuple[str, int], ...
    ] = ()  # (pod, its lowest rank_id) of a completed table (ranktable.pod_ranks)


@dataclasses.dataclass
class JobMemory:
    """Per-job state between passes."""

    uid: str = ""  # the job it belongs to (a new job of the same name gets a new memory)
    logs: dict[str, PodLog] = dataclasses.field(default_factory=dict)
    # Planned state (written by the executor from Plan.memory):
    table: TableCache = TableCache()
    parsed_annotations: dict[str, tuple[str, tuple[ranktable.Device, ...]]] = dataclasses.field(
        default_factory=dict
    )
    announced: frozenset[str] = frozenset()  # checkpoint Events already emitted
    # pod uid -> (when read, the kubelet's newest Warning Event on a pod that does not start): podwarnings.py
    pod_warnings: dict[str, tuple[float, str]] = dataclasses.field(default_factory=dict)
    # Outcomes of the executor's writes:
    last_status_write: float = 0.0
    # The status this operator last wrote. The body a pass sees may lag behind it (watch latency); a lagging
    # `restarts` would recreate pods of an attempt that was already given up.
    last_written: dict[str, Any] | None = None
    rank_table_data: dict[str, str] | None = None  # the rank-table ConfigMap's data as last written
    ensured_uid: str = ""  # the job whose Service, launch ConfigMap and PodGroup were ensured
    pod_group_error: str | None = None
    # The apiserver's last refusal to create one of the job's pods (admission.py), None once creation works.
    refusal: admission.Refusal | None = None
    # Issue 24: (kind, name) whose create the apiserver answered 409 AlreadyExists; observe reads their owners.
    taken: frozenset[tuple[str, str]] = frozenset()
    # Pods this operator created that the pod index has not shown yet: name -> when (planner.expected_pods).
    expected: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class MemoryUpdate:
    """The part of JobMemory a pass changes, as data (None = unchanged); the executor applies it."""

    logs: Mapping[str, PodLog] = dataclasses.field(default_factory=dict)  # entries to set
    table: TableCache | None = None
    parsed_annotations: dict[str, tuple[str, tuple[ranktable.Device, ...]]] | None = None
    announced: frozenset[str] | None = None
    pod_warnings: dict[str, tuple[float, str]] | None = None
    ensured_uid: str | None = None  # the Service, launch ConfigMap and PodGroup are ensured for this job
    pod_group_error: tuple[str | None] | None = None  # (the new error or None), when observed this pass
    taken: frozenset[tuple[str, str]] | None = None  # issue 24: the 409-answered names still to watch
    expected: dict[str, float] | None = None  # created pods not yet seen (JobMemory.expected)

    def apply(self, mem: JobMemory) -> None:
        """Write the update into `mem` (the executor's job)."""
        mem.logs.update(self.logs)
        fields = (
            "table",
            "parsed_annotations",
            "announced",
            "pod_warnings",
            "ensured_uid",
            "taken",
            "expected",
        )
        for name in fields:
            value = getattr(self, name)
            if value is not None:
                setattr(mem, name, value)
        if self.pod_group_error is not None:
            mem.pod_group_error = self.pod_group_error[0]


def feed_lines(mem: JobMemory, pod: str, uid: str, lines: Iterable[str], tail: int) -> bool:
    """Fold log lines of `pod` into the memory (from a followed stream); True when its progress changed."""
    entry = mem.logs.get(pod)
    if entry is None or entry.uid != uid:
        entry = PodLog(uid=uid)
    text = "\n".join(lines)
    kept = (entry.lines + logparse.last_lines(text, tail))[-tail:] if tail > 0 else []
    new = entry.folded(logparse.parse_lines(text), lines=kept)
    mem.logs[pod] = new
    return new.progress != entry.progress


def read_tail(entry: PodLog | None, uid: str, text: str, tail: int, final: bool) -> PodLog:
    """The log entry after reading a pod's whole tail once (its last lines replace the kept ones)."""
    base = entry if entry is not None and entry.uid == uid else PodLog(uid=uid)
    return base.folded(logparse.parse_lines(text), lines=logparse.last_lines(text, tail), final=final)


def rank0(job: spec.JobSpec, pods: Sequence[PodView], logs: Mapping[str, PodLog], table_rank0: str) -> str:
    """Name of the pod that is rank 0: the one whose log says so, else the rank table's, else worker 0."""
    live = {p.name for p in pods}
    for name, entry in logs.items():
        if entry.rank == 0 and name in live:
            return name
    if table_rank0 in live:
        return table_rank0
    return render.worker_name(job, 0)


def starting_status(body: Mapping[str, Any], mem: JobMemory, *, valid: bool) -> dict[str, Any]:
    """The status a pass starts from: what this operator last wrote, else the body's (which may lag). A job
    whose spec was invalid and has been edited since (a new generation) and now parses starts over."""
    prev = dict(mem.last_written if mem.last_written is not None else body.get("status") or {})
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    if valid and prev.get("reason") == c.REASON_INVALID_SPEC and prev.get("observedGeneration") != generation:
        return {}
    return prev


@dataclasses.dataclass(frozen=True)
class Tail:
    """The last lines of one pod's log, read in this pass."""

    uid: str
    text: str
    terminated: bool


@dataclasses.dataclass(frozen=True)
class Observation:
    """Everything one pass knows about one job: plain data, the planner's only input besides memory."""

    body: Mapping[str, Any]
    pods: tuple[PodView, ...]
    now: float
    # (kind, name) of the job's Service and launch ConfigMap that exist, None when not known (no index).
    existing: Collection[tuple[str, str]] | None = None
    source: Mapping[str, Any] | None = None  # the job spec.from names, when it was read now
    source_read: bool = False  # whether `source` was read (None then means: no such job)
    pod_group_served: bool | None = None  # whether the PodGroup API is served; None = not asked this pass
    tails: Mapping[str, Tail] = dataclasses.field(default_factory=dict)
    pod_warnings: dict[str, tuple[float, str]] | None = None  # podwarnings' cache after this pass's reads
    # Issue 24 (guards.py): owners of the objects read by name, None when none was read this pass; whether the
    # LocalQueue spec.scheduling.queue names exists, None when not read (no queue, Kueue not served, pods exist).
    owners: Mapping[tuple[str, str], str] | None = None
    local_queue: bool | None = None
