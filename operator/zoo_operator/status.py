"""Status computation: the new `.status` of a job from the decision, its pods, the rank table and the logs.

Pure. Conditions keep their lastTransitionTime while their status does not change. `patch_for` turns the new
status into a merge patch (None for keys that disappeared) and returns None when nothing changed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from zoo_operator import conditions as c
from zoo_operator import history as history_mod
from zoo_operator.podview import PodView, format_time
from zoo_operator.policy import Decision, JobState

# Beyond this many ranks, log lines are kept only for rank 0 and failed ranks (status must stay well under 1 MiB).
MAX_RANKS_WITH_LINES = 64


@dataclasses.dataclass(frozen=True)
class RankTableInfo:
    """What status says about the rank table."""

    config_map: str
    version: str
    status: str
    devices_known: int


def set_condition(
    conds: Sequence[Mapping[str, Any]], ctype: str, status: bool, reason: str, message: str, now: float
) -> list[dict[str, Any]]:
    """Conditions with `ctype` set; lastTransitionTime moves only when the status flips."""
    value = "True" if status else "False"
    out: list[dict[str, Any]] = []
    found = False
    for cond in conds:
        if cond.get("type") != ctype:
            out.append(dict(cond))
            continue
        found = True
        since = cond.get("lastTransitionTime") if cond.get("status") == value else None
        out.append(
            {
                "type": ctype,
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since or format_time(now),
            }
        )
    if not found:
        out.append(
            {
                "type": ctype,
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": format_time(now),
            }
        )
    return out


def _has(conds: Sequence[Mapping[str, Any]], ctype: str) -> bool:
    return any(cond.get("type") == ctype for cond in conds)


def phase_conditions(
    prev: Sequence[Mapping[str, Any]], decision: Decision, now: float, created: bool
) -> list[dict[str, Any]]:
    """Conditions that follow from the phase: Created, Running, Restarting, Succeeded, Failed, Suspended."""
    conds = [dict(x) for x in prev]
    phase, reason, message = decision.phase, decision.reason, decision.message
    if created and not _has(conds, c.CREATED):
        conds = set_condition(
            conds, c.CREATED, True, c.REASON_JOB_CREATED, "service, config map and pods created", now
        )
    flags = {
        c.RUNNING_CONDITION: phase == c.RUNNING,
        c.RESTARTING_CONDITION: phase == c.RESTARTING,
        c.SUCCEEDED_CONDITION: phase == c.SUCCEEDED,
        c.FAILED_CONDITION: phase == c.FAILED,
        c.SUSPENDED_CONDITION: phase == c.SUSPENDED,
    }
    for ctype, on in flags.items():
        if on:
            conds = set_condition(conds, ctype, True, reason, message, now)
        elif _has(conds, ctype):
            # Only conditions that were once set are flipped to False; absent ones stay absent.
            off_reason = c.REASON_RESUMED if ctype == c.SUSPENDED_CONDITION else phase
            conds = set_condition(conds, ctype, False, off_reason, f"job is {phase}", now)
    return conds


def rank_counts(pods: Sequence[PodView], replicas: int, per_pod: int = 1) -> dict[str, int]:
    """Counts of the current workers' ranks by state; a server pod (issue 21) is `per_pod` ranks in its state
    (its processes run, and its pod ends, together)."""
    workers = [p for p in pods if p.role == c.ROLE_WORKER and not p.deleting]
    succeeded = per_pod * sum(1 for p in workers if p.terminated and not p.failed)
    failed = per_pod * sum(1 for p in workers if p.failed)
    active = per_pod * sum(1 for p in workers if p.running and not p.terminated)
    return {
        "total": replicas,
        "pending": per_pod * len(workers) - succeeded - failed - active,
        "active": active,
        "succeeded": succeeded,
        "failed": failed,
    }


def rank_summaries(
    pods: Sequence[PodView],
    lines: Mapping[str, list[str]],
    previous: Sequence[Mapping[str, Any]] = (),
    per_pod: int = 1,
    logged_ranks: Mapping[str, int] | None = None,
    table_ranks: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One bounded summary per pod; log lines of pods already gone are carried over from `previous`.

    A server pod (issue 21) holds `per_pod` ranks: `ranks` says how many, and `rank` is the lowest its log has
    named (`logged_ranks`, memory.PodLog.rank: the rank table's order decides it, not the pod's index), until
    then index x per_pod. A device-mode pod's `rank` is its RANK_ID: the completed rank table's
    (`table_ranks`, ranktable.pod_ranks: node-IP order, so not the worker index when pods land out of that
    order), else the rank its log named (the dynamic launch), else its index."""
    by_name: dict[str, dict[str, Any]] = {str(s.get("pod")): dict(s) for s in previous if s.get("pod")}
    for pod in pods:
        server = per_pod > 1 and pod.index is not None
        rank = -1 if pod.index is None else pod.index
        if server:
            rank = (logged_ranks or {}).get(pod.name, rank * per_pod)
        elif pod.index is not None:
            rank = (table_ranks or {}).get(pod.name, (logged_ranks or {}).get(pod.name, rank))
        summary: dict[str, Any] = {"rank": rank, "pod": pod.name, "phase": pod.phase}
        if server:
            summary["ranks"] = per_pod
        if pod.node:
            summary["node"] = pod.node
        reason = pod.terminated_reason or pod.waiting_reason
        if reason:
            summary["reason"] = reason
        if pod.exit_code is not None:
            summary["exitCode"] = pod.exit_code
        kept = lines.get(pod.name)
        if kept is None:
            kept = by_name.get(pod.name, {}).get("lastLines")
        if kept:
            summary["lastLines"] = list(kept)
        by_name[pod.name] = summary
    out = sorted(by_name.values(), key=lambda s: (s.get("rank", 0), s.get("pod", "")))
    if len(out) > MAX_RANKS_WITH_LINES:
        for s in out:
            if s.get("rank") != 0 and not s.get("exitCode"):
                s.pop("lastLines", None)
    return out


def compute(
    *,
    prev: Mapping[str, Any],
    state: JobState,
    decision: Decision,
    pods: Sequence[PodView],
    replicas: int,
    generation: int,
    now: float,
    rank_table: RankTableInfo | None,
    progress: Mapping[str, Any],
    lines: Mapping[str, list[str]],
    result: Mapping[str, Any] | None,
    created: bool,
    history: Sequence[Mapping[str, Any]] | None = None,
    ranks_per_pod: int = 1,
    logged_ranks: Mapping[str, int] | None = None,
    table_ranks: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The complete new status."""
    restarts = state.restarts + (1 if decision.restart else 0)
    conds = phase_conditions(prev.get("conditions") or [], decision, now, created)
    if rank_table is not None:
        ready = rank_table.status == "completed"
        conds = set_condition(
            conds,
            c.RANK_TABLE_READY,
            ready,
            c.REASON_RANK_TABLE_COMPLETED if ready else c.REASON_WAITING_FOR_DEVICES,
            f"{rank_table.devices_known} of {replicas} devices known",
            now,
        )
    out: dict[str, Any] = {
        "phase": decision.phase,
        "reason": decision.reason,
        "message": decision.message,
        "conditions": conds,
        "observedGeneration": generation,
        "ranks": rank_counts(pods, replicas, ranks_per_pod),
        "restarts": restarts,
        "stoppedRestarts": state.stopped_restarts + (1 if decision.restart and decision.stopped else 0),
        "rankSummaries": rank_summaries(
            pods, lines, prev.get("rankSummaries") or [], ranks_per_pod, logged_ranks, table_ranks
        ),
    }
    for key in (
        "startTime",
        "completionTime",
        "restartTime",
        "progress",
        "result",
        "lastCheckpoint",
        "resumes",
    ):
        if prev.get(key) is not None:
            out[key] = prev[key]
    if decision.phase == c.SUSPENDED or (state.phase == c.SUSPENDED and decision.phase != c.SUSPENDED):
        out.pop("startTime", None)  # activeDeadlineSeconds counts from the (re)start
    if "startTime" not in out and created and decision.phase not in (c.SUSPENDED, c.FAILED):
        out["startTime"] = format_time(now)
    if decision.restart:
        out["restartTime"] = format_time(now)
    if decision.phase in c.FINISHED_PHASES and not out.get("completionTime"):
        out["completionTime"] = format_time(now)
    if rank_table is not None:
        out["rankTable"] = {
            "configMap": rank_table.config_map,
            "version": rank_table.version,
            "status": rank_table.status,
            "devicesKnown": rank_table.devices_known,
        }
    # History: per-epoch curve for the job's life (history.py), merged from rank 0's freshly folded one.
    kept_history = history_mod.merge(prev.get("history") or [], history or [])
    if kept_history:
        out["history"] = kept_history
    # Columns (stage, 3/10, ETA) from the fresh progress, else the kept one (a finished job's pods may be gone).
    shown = {k: v for k, v in (progress or prev.get("progress") or {}).items() if k != "updateTime"}
    if shown or decision.phase == c.RUNNING:
        progress = progress_view(shown, decision.phase, kept_history)
    if progress:
        before = dict(prev.get("progress") or {})
        since = before.pop("updateTime", None)
        current = {k: v for k, v in progress.items() if k != "updateTime"}
        out["progress"] = {
            **current,
            "updateTime": since if current == before and since else format_time(now),
        }
    if result:
        out["result"] = dict(result)
    # Every condition says which generation of the spec it was computed from (API conventions).
    out["conditions"] = [{**cond, "observedGeneration": generation} for cond in out["conditions"]]
    return out


# progress.stage values: what a Running job is doing (so `kubectl get` never shows an empty Running).
STAGE_STARTING = "Starting"  # pods run, the workload has not logged its start event yet (imports, rendezvous)
STAGE_COMPILING = "Compiling"  # started, no step yet: MindSpore builds and compiles the graph
STAGE_TRAINING = "Training"
STAGE_DONE = "Done"


def format_duration(seconds: float | None) -> str | None:
    """A short duration for a column: 45s, 3m05s, 2h07m, 3d04h; None for None or a negative/unusable value."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{total // 86400}d{total % 86400 // 3600:02d}h"


def eta_seconds(progress: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()) -> float | None:
    """Seconds left: remaining steps times the time of one step, from the last epoch's duration (history) or,
    before the first epoch ends, from the global batch and images/s. None when unknown."""
    epochs, epoch, spe = progress.get("epochs"), progress.get("epoch"), progress.get("stepsPerEpoch")
    if not (isinstance(epochs, int) and isinstance(epoch, int) and isinstance(spe, int) and spe > 0):
        return None
    raw_step = progress.get("step")
    step = raw_step if isinstance(raw_step, int) else 0
    remaining = max(0, (epochs - epoch) * spe + (spe - min(step, spe)))
    per_step = None
    timed = [e for e in history if isinstance(e.get("seconds"), (int, float)) and e["seconds"] > 0]
    if timed:
        per_step = float(timed[-1]["seconds"]) / spe
    elif step > 1 or epoch > 1:  # the first step's images/s includes graph compilation: no ETA from it
        batch, ips = progress.get("globalBatchSize"), progress.get("imagesPerSecond")
        if isinstance(batch, int) and isinstance(ips, (int, float)) and ips > 0:
            per_step = batch / float(ips)
    return None if per_step is None else remaining * per_step


def progress_view(
    progress: Mapping[str, Any], phase: str, history: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """`progress` with what the printer columns show: stage, display (epoch `3/10`), stepDisplay (`120/1251`)
    and eta. A Succeeded job's progress is complete (last epoch, last step), never left mid-epoch."""
    out = {k: v for k, v in progress.items() if k not in ("stage", "display", "stepDisplay", "eta")}
    if phase == c.SUCCEEDED:
        if isinstance(out.get("epochs"), int):
            out["epoch"] = out["epochs"]
        if isinstance(out.get("stepsPerEpoch"), int):
            out["step"] = out["stepsPerEpoch"]
        out["stage"] = STAGE_DONE
    elif phase == c.RUNNING:
        if "step" in out:
            out["stage"] = STAGE_TRAINING
        elif "epochs" in out or "stepsPerEpoch" in out:
            out["stage"] = STAGE_COMPILING
        else:
            out["stage"] = STAGE_STARTING
    if isinstance(out.get("epoch"), int):
        out["display"] = (
            f"{out['epoch']}/{out['epochs']}" if isinstance(out.get("epochs"), int) else str(out["epoch"])
        )
    elif isinstance(out.get("epochs"), int):
        out["display"] = f"0/{out['epochs']}"
    if isinstance(out.get("step"), int):
        out["stepDisplay"] = (
            f"{out['step']}/{out['stepsPerEpoch']}"
            if isinstance(out.get("stepsPerEpoch"), int)
            else str(out["step"])
        )
    if phase == c.RUNNING:
        eta = format_duration(eta_seconds(out, history))
        if eta:
            out["eta"] = eta
    return out


def invalid(prev: Mapping[str, Any], message: str, generation: int, now: float) -> dict[str, Any]:
    """Status of a job the operator refuses (InvalidSpec): Failed, nothing created."""
    decision = Decision(c.FAILED, c.REASON_INVALID_SPEC, message)
    return {
        "phase": c.FAILED,
        "reason": c.REASON_INVALID_SPEC,
        "message": message,
        "conditions": phase_conditions(prev.get("conditions") or [], decision, now, created=False),
        "observedGeneration": generation,
        "restarts": 0,
        "completionTime": prev.get("completionTime") or format_time(now),
    }


def _strip(status: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if v is not None}


def patch_for(prev: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """A merge patch turning `prev` into `new` at the top level, or None when they are equal."""
    prev, new = _strip(prev), _strip(new)
    if prev == new:
        return None
    patch: dict[str, Any] = {k: v for k, v in new.items() if prev.get(k) != v}
    patch.update({k: None for k in prev if k not in new})
    for key, value in patch.items():
        # A merge patch merges objects key by key (RFC 7386): a key that left a nested object (e.g.
        # progress.eta once the job succeeded) must be sent as null, or the server keeps it.
        old = prev.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            patch[key] = {**value, **{k: None for k in old if k not in value}}
    return patch


def is_transition(prev: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether the change is one that is written at once (phase, reason, restarts or a new spec generation),
    bypassing the rate limit."""
    return any(prev.get(k) != new.get(k) for k in ("phase", "reason", "restarts", "observedGeneration"))


# Resumes kept in status.resumes (the newest).
MAX_RESUMES = 20


def lost_steps(progress: Mapping[str, Any] | None, resumed_global_step: Any) -> int | None:
    """Steps trained before a restart that are trained again: the last progress seen minus the resume point."""
    p = progress or {}
    epoch, step, per_epoch = p.get("epoch"), p.get("step"), p.get("stepsPerEpoch")
    if not (
        isinstance(epoch, int)
        and isinstance(step, int)
        and isinstance(per_epoch, int)
        and isinstance(resumed_global_step, int)
    ):
        return None
    return max(0, (epoch - 1) * per_epoch + step - resumed_global_step)


def in_place(restart: Mapping[str, Any] | None, resume: Mapping[str, Any]) -> bool:
    """Whether a resume followed an in-place process restart in the same pod (the `process_restart` event
    zoo-launch printed before the restarted process resumed)."""
    if not restart or restart.get("ts") is None or resume.get("ts") is None:
        return False
    return bool(restart["ts"] <= resume["ts"])


def with_checkpoints(out: dict[str, Any], prev: Mapping[str, Any], ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """status.lastCheckpoint and status.resumes from rank 0's folded checkpoint events (logparse.fold_checkpoints).

    A resume is recorded once (keyed by its time and checkpoint), with the restart it belongs to and the steps
    it lost against the progress recorded before it (`prev`)."""
    last = ckpt.get("last")
    if last and last.get("ts") is not None:
        out["lastCheckpoint"] = {
            "epoch": last["epoch"],
            "step": last.get("step") or 0,
            "path": last["path"],
            "time": format_time(last["ts"]),
        }
    carried = int(out.get("processRestarts") or prev.get("processRestarts") or 0)
    if carried:  # status.compute starts each pass without it: the count so far comes from `prev`
        out["processRestarts"] = carried
    resume = ckpt.get("resume")
    if resume and resume.get("ts") is not None:
        when = format_time(resume["ts"])
        resumes = [dict(r) for r in out.get("resumes") or []]
        if not any(r.get("time") == when and r.get("path") == resume["path"] for r in resumes):
            record: dict[str, Any] = {
                "restart": int(out.get("restarts") or 0),
                "epoch": resume["epoch"],
                "step": resume.get("step") or 0,
                "path": resume["path"],
                "time": when,
            }
            lost = lost_steps(prev.get("progress"), resume.get("global_step"))
            if lost is not None:
                record["lostSteps"] = lost
            if in_place(ckpt.get("process_restart"), resume):
                record["inPlace"] = True
                out["processRestarts"] = int(out.get("processRestarts") or 0) + 1
            resumes.append(record)
            out["resumes"] = resumes[-MAX_RESUMES:]
    return out


def checkpoint_notices(
    prev: Mapping[str, Any], new: Mapping[str, Any], invalid: Mapping[str, Sequence[Sequence[str]]]
) -> list[tuple[str, str, str, str]]:
    """(key, type, reason, message) of the Events checkpoints call for: a Normal one per resume new since
    `prev`, a Warning per damaged checkpoint a rank skipped (`invalid`: pod -> [path, why] pairs). The caller
    emits each key once."""
    out = []
    before = prev.get("resumes") or []
    for r in new.get("resumes") or []:
        if r in before:
            continue
        lost = f", {r['lostSteps']} steps trained again" if "lostSteps" in r else ""
        if r.get("inPlace"):
            lost += "; the processes restarted inside their pods (no pod recreated)"
        out.append(
            (
                f"resume:{r.get('time')}:{r.get('path')}",
                "Normal",
                c.REASON_TRAINING_RESUMED,
                f"training resumed from {r.get('path')} (epoch {r.get('epoch')} step {r.get('step')}){lost}",
            )
        )
    for pod, pairs in invalid.items():
        for path, why in pairs:
            out.append(
                (
                    f"invalid:{pod}:{path}",
                    "Warning",
                    c.REASON_CHECKPOINT_INVALID,
                    f"{pod}: skipped checkpoint {path}: {why}; resumed from the previous complete one",
                )
            )
    return out
