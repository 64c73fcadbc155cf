"""What a job leaves behind, in the user's terms (issue 13): pure functions, plain data in and out.

- `in_user_terms`: status.result with every pod path (/zoo/checkpoint/..., /zoo/from/...) turned into the volume
  it lives on (as the user wrote it in the spec) and the path relative to that volume.
- `ephemeral_checkpoints`: the warning when a training job's checkpoints will not outlive its pods.
- `resolve_source`: `spec.from` ({job, checkpoint: best|last}) against the named job's object: which volume to
  mount at /zoo/from, which checkpoint and which saved config to use; `SourceError` when it cannot be used.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from typing import Any

from zoo_operator import conditions as c
from zoo_operator import logparse, status
from zoo_operator.policy import Decision
from zoo_operator.spec import JobSpec
from zoo_workloads import contract

CONFIG_FILE = contract.CONFIG_FILE


class SourceError(ValueError):
    """spec.from names a job whose checkpoint cannot be used (missing, failed, ephemeral, other model), or, with
    `waiting`, cannot be used YET (it has not finished): the job then waits in Pending."""

    def __init__(self, message: str, *, waiting: bool = False) -> None:
        super().__init__(message)
        self.waiting = waiting


@dataclasses.dataclass(frozen=True)
class Source:
    """A resolved spec.from: the named job's checkpoint volume and paths relative to it."""

    job: str
    kind: str  # best | last
    model: str
    volume: dict[str, Any]
    checkpoint: str  # relative to the volume
    epoch: int | None
    metrics: dict[str, float]

    @property
    def run_dir(self) -> str:
        """The run directory (config.yaml, result.json, checkpoints), relative to the volume."""
        return posixpath.dirname(self.checkpoint) or "."

    def status(self) -> dict[str, Any]:
        """status.source: what this job was built from (kept, so the source may change or go afterwards)."""
        out: dict[str, Any] = {
            "job": self.job,
            "checkpoint": self.kind,
            "model": self.model,
            "volume": volume_ref(self.volume),
            "volumeSource": dict(self.volume),
            "path": self.checkpoint,
            "metrics": dict(self.metrics),
        }
        if self.epoch is not None:
            out["epoch"] = self.epoch
        return out

    @classmethod
    def from_status(cls, data: Any) -> Source | None:
        """A Source read back from status.source (None when absent or malformed)."""
        if not isinstance(data, Mapping):
            return None
        volume, path = data.get("volumeSource"), data.get("path")
        if not isinstance(volume, Mapping) or not isinstance(path, str) or not path:
            return None
        epoch = data.get("epoch")
        return cls(
            str(data.get("job", "")),
            str(data.get("checkpoint", "best")),
            str(data.get("model", "")),
            dict(volume),
            path,
            epoch if isinstance(epoch, int) else None,
            dict(data.get("metrics") or {}),
        )


def volume_ref(volume: Mapping[str, Any]) -> str:
    """A volume as the user named it: `persistentVolumeClaim/NAME`, `hostPath:/PATH`, `nfs:SERVER:/PATH`,
    `emptyDir`."""
    if not volume:
        return "emptyDir"
    kind, body = next(iter(volume.items()))
    body = body if isinstance(body, Mapping) else {}
    if kind == "persistentVolumeClaim":
        return f"persistentVolumeClaim/{body.get('claimName', '')}"
    if kind == "hostPath":
        return f"hostPath:{body.get('path', '')}"
    if kind == "nfs":
        return f"nfs:{body.get('server', '')}:{body.get('path', '')}"
    return str(kind)


def is_ephemeral(volume: Mapping[str, Any]) -> bool:
    """Whether files on the volume go with the pod (emptyDir, the default)."""
    return not volume or "emptyDir" in volume


def _split(path: Any, job: JobSpec) -> tuple[str, str] | None:
    """(volume ref, relative path) of a pod path on the checkpoint or source volume; None for other paths."""
    if not isinstance(path, str) or not path:
        return None
    roots = [(c.CHECKPOINT_DIR, job.checkpoint_volume)]
    if job.source is not None:
        roots.append((c.FROM_DIR, job.source.volume))
    for root, volume in roots:
        if path.startswith(root + "/"):
            return volume_ref(volume), path[len(root) + 1 :]
    return None


def _record(raw: Any, job: JobSpec) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    out: dict[str, Any] = {"metrics": logparse.result_from_metrics(raw.get("metrics"), None)["metrics"]}
    epoch = raw.get("epoch")
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        out["epoch"] = epoch
    where = _split(raw.get("checkpoint"), job)
    if where:
        out["volume"], out["checkpoint"] = where
    elif isinstance(raw.get("checkpoint"), str):
        out["checkpoint"] = raw["checkpoint"]
    return out


def in_user_terms(record: Mapping[str, Any] | None, job: JobSpec) -> dict[str, Any] | None:
    """status.result from a termination message or `done` event: top1/top5/metrics of the checkpoint it names,
    `checkpoint` relative to `checkpointVolume`, `best`/`last` each with its epoch and metrics, and an export's
    `artifact` relative to `artifactVolume`."""
    if not record:
        return None
    result = logparse.result_from_metrics(record.get("metrics"), None)
    where = _split(record.get("checkpoint"), job)
    if where:
        result["checkpointVolume"], result["checkpoint"] = where
    elif isinstance(record.get("checkpoint"), str) and record["checkpoint"]:
        result["checkpoint"] = record["checkpoint"]
    epochs = record.get("epochs")
    if isinstance(epochs, int) and not isinstance(epochs, bool) and job.task != "train":
        result["epoch"] = epochs  # the epoch of the checkpoint evaluated or exported
    for kind in ("best", "last"):
        entry = _record(record.get(kind), job)
        if entry is not None:
            result[kind] = entry
    artifact = _split(record.get("artifact"), job)
    if artifact:
        result["artifactVolume"], result["artifact"] = artifact
    return result


def ephemeral_checkpoints(job: JobSpec) -> str | None:
    """The CheckpointsEphemeral warning when a training job writes checkpoints where they die with its pods."""
    if job.task != "train" or not is_ephemeral(job.checkpoint_volume):
        return None
    return (
        "spec.checkpoint.volume is an emptyDir (the default): checkpoints are deleted with the pods, so "
        "status.result names files that will not exist, and neither resume nor spec.from can use them; "
        "set spec.checkpoint.volume to a persistentVolumeClaim, nfs or hostPath volume"
    )


def resolve_source(job: JobSpec, source: Mapping[str, Any] | None) -> Source:
    """The checkpoint of the job named by spec.from, from that job's object; SourceError when unusable."""
    name, kind = job.from_job, job.from_checkpoint
    where = f"spec.from.job: {name}"
    if source is None:
        raise SourceError(f"{where}: no such ZooTrainingJob in namespace {job.namespace}")
    status = source.get("status") or {}
    spec = source.get("spec") or {}
    if status.get("phase") != c.SUCCEEDED:
        phase = status.get("phase")
        if phase == c.FAILED:
            raise SourceError(f"{where} Failed; spec.from needs a Succeeded job")
        raise SourceError(
            f"{where} is {phase or 'not started'}; waiting until it has Succeeded", waiting=True
        )
    if spec.get("model") != job.model:
        raise SourceError(f"{where} trained {spec.get('model')}, not spec.model {job.model}")
    volume = dict((spec.get("checkpoint") or {}).get("volume") or {})
    if is_ephemeral(volume):
        raise SourceError(
            f"{where} wrote its checkpoints to an emptyDir, gone with its pods; train it again "
            "with spec.checkpoint.volume set"
        )
    result = status.get("result") or {}
    entry = result.get(kind)
    if not isinstance(entry, Mapping) or not isinstance(entry.get("checkpoint"), str):
        # Results written before best/last existed: the named checkpoint only.
        if kind == "best" and isinstance(result.get("checkpoint"), str):
            entry = {"checkpoint": result["checkpoint"], "metrics": result.get("metrics") or {}}
        else:
            raise SourceError(f"{where} reports no {kind} checkpoint in status.result")
    path = str(entry["checkpoint"])
    if path.startswith("/") or ".." in path.split("/"):
        raise SourceError(
            f"{where}: status.result.{kind}.checkpoint {path!r} is not a path inside its volume"
        )
    epoch = entry.get("epoch")
    return Source(
        str(name),
        str(kind),
        job.model,
        volume,
        path,
        epoch if isinstance(epoch, int) else None,
        {
            str(k): float(v)
            for k, v in (entry.get("metrics") or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        },
    )


def assumed_source(job: JobSpec) -> Source:
    """For a dry run only (`zoo-operator render`), where the named job cannot be read: the default layout
    (<job>/<model>-best.ckpt) on a placeholder volume. The operator always resolves the real one."""
    kind = job.from_checkpoint
    name = str(job.from_job)
    file = f"{job.model}-best.ckpt" if kind == "best" else f"{job.model}-LAST-EPOCH.ckpt"
    return Source(
        name,
        kind,
        job.model,
        {"persistentVolumeClaim": {"claimName": f"{name}-checkpoint-volume"}},
        f"{name}/{file}",
        None,
        {},
    )


def waiting_status(prev: Mapping[str, Any], message: str, generation: int, now: float) -> dict[str, Any]:
    """Status of a job whose spec.from job has not finished yet: Pending, nothing created, re-checked each pass."""
    decision = Decision(c.PENDING, c.REASON_WAITING_FOR_SOURCE, message)
    return {
        "phase": c.PENDING,
        "reason": c.REASON_WAITING_FOR_SOURCE,
        "message": message,
        "conditions": status.phase_conditions(prev.get("conditions") or [], decision, now, created=False),
        "observedGeneration": generation,
        "restarts": 0,
    }
