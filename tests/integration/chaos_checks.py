"""The chaos test's bookkeeping (pure): snapshots of a namespace's pods and jobs in, violations out.

Not a test module (no test_ prefix). tests/integration/test_chaos.py feeds it a snapshot per poll (the items of
`kubectl get pods,ztj -o json`); tests/unit/test_chaos_checks.py proves each check fires on plain data.

- Duplicate pods: a rank of an attempt is one pod. Two live pods of the same (job, role, rank, attempt) in one
  snapshot, or two pod UIDs for it over the whole run, is a duplicate (rank pods have fixed names, so a second
  UID means the operator created the rank again within the same attempt).
- Status regressions: a job's phase never leaves a terminal phase, its status never vanishes once written, and
  status.restarts and status.progress.epoch never decrease.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LABEL_JOB = "modelzoo.io/job-name"
LABEL_ROLE = "modelzoo.io/role"
LABEL_RANK = "modelzoo.io/rank"
ANNOTATION_ATTEMPT = "modelzoo.io/attempt"
TERMINAL = frozenset({"Succeeded", "Failed"})

RankKey = tuple[str, str, str, str]  # (job, role, rank, attempt)


@dataclass(frozen=True)
class JobState:
    """What the checks compare between two snapshots of one job's status."""

    phase: str | None
    restarts: int
    epoch: int

    @staticmethod
    def of(status: Mapping[str, Any]) -> JobState:
        """The state of a status ({} before the operator wrote one)."""
        progress = status.get("progress") or {}
        return JobState(
            status.get("phase"), int(status.get("restarts") or 0), int(progress.get("epoch") or 0)
        )


def _live(pod: Mapping[str, Any]) -> bool:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    return not meta.get("deletionTimestamp") and status.get("phase") not in TERMINAL


def rank_key(pod: Mapping[str, Any]) -> RankKey | None:
    """(job, role, rank, attempt) of one of the operator's pods; None for a pod of no job."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    job = labels.get(LABEL_JOB)
    if not job:
        return None
    annotations = meta.get("annotations") or {}
    return (
        str(job),
        str(labels.get(LABEL_ROLE, "")),
        str(labels.get(LABEL_RANK, meta.get("name", ""))),
        str(annotations.get(ANNOTATION_ATTEMPT, "")),
    )


@dataclass
class Ledger:
    """Everything seen over a run, and every violation found (with the snapshot time)."""

    uids: dict[RankKey, set[str]] = field(default_factory=dict)
    states: dict[str, JobState] = field(default_factory=dict)
    terminal: dict[str, str] = field(default_factory=dict)  # job -> the terminal phase it first reached
    problems: list[str] = field(default_factory=list)
    snapshots: int = 0

    def record(self, items: Iterable[Mapping[str, Any]], at: float) -> None:
        """Fold one snapshot (pods and ZooTrainingJobs of one namespace, taken at `at` seconds)."""
        self.snapshots += 1
        live: dict[RankKey, list[str]] = {}
        for obj in items:
            kind = obj.get("kind")
            if kind == "Pod":
                self._pod(obj, live)
            elif kind == "ZooTrainingJob":
                self._job(obj, at)
        for key, uids in sorted(live.items()):
            if len(uids) > 1:
                self.problems.append(f"t={at:.1f}s: {len(uids)} live pods for {key}: {sorted(uids)}")

    def _pod(self, pod: Mapping[str, Any], live: dict[RankKey, list[str]]) -> None:
        key = rank_key(pod)
        if key is None:
            return
        uid = str((pod.get("metadata") or {}).get("uid"))
        seen = self.uids.setdefault(key, set())
        if uid not in seen and seen:
            self.problems.append(f"rank {key} created again: pod uids {sorted(seen)} then {uid}")
        seen.add(uid)
        if _live(pod):
            live.setdefault(key, []).append(uid)

    def _job(self, job: Mapping[str, Any], at: float) -> None:
        name = str((job.get("metadata") or {}).get("name"))
        now = JobState.of(job.get("status") or {})
        before = self.states.get(name)
        self.states[name] = now
        if before is None:
            if now.phase in TERMINAL:
                self.terminal[name] = str(now.phase)
            return
        said = f"t={at:.1f}s: job {name}"
        if before.phase is not None and now.phase is None:
            self.problems.append(f"{said}: status phase {before.phase} vanished")
        first = self.terminal.get(name)
        if first is not None and now.phase != first:
            self.problems.append(f"{said}: phase left terminal {first} for {now.phase}")
        elif first is None and now.phase in TERMINAL:
            self.terminal[name] = str(now.phase)
        if now.restarts < before.restarts:
            self.problems.append(f"{said}: restarts went down {before.restarts} -> {now.restarts}")
        if now.epoch < before.epoch:
            self.problems.append(f"{said}: epoch went down {before.epoch} -> {now.epoch}")


def unowned(items: Iterable[Mapping[str, Any]], job_uids: Mapping[str, str]) -> list[str]:
    """Objects labelled with a job's name that the job does not own as controller (garbage collection would
    leave them behind when the job is deleted): 'Kind/name (job J)' for each."""
    out = []
    for obj in items:
        meta = obj.get("metadata") or {}
        job = (meta.get("labels") or {}).get(LABEL_JOB)
        if not job:
            continue
        owners = [
            ref.get("uid")
            for ref in meta.get("ownerReferences") or []
            if ref.get("kind") == "ZooTrainingJob" and ref.get("controller")
        ]
        if job_uids.get(str(job)) not in owners:
            out.append(f"{obj.get('kind')}/{meta.get('name')} (job {job}, owners {owners})")
    return sorted(out)
