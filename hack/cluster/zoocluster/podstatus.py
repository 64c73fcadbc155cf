"""Pure pod-status logic: container states in Kubernetes shape, the pod phase and conditions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

TERMINAL = ("Succeeded", "Failed")


def now_rfc3339() -> str:
    """The current UTC time as Kubernetes writes it (seconds precision)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def exit_reason(exit_code: int, oom: bool = False) -> str:
    """The terminated reason a kubelet reports for an exit code."""
    if oom:
        return "OOMKilled"
    return "Completed" if exit_code == 0 else "Error"


@dataclass
class ContainerState:
    """What the kubelet knows about one container (the latest instance, plus the previous termination)."""

    name: str
    image: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    restart_count: int = 0
    last_terminated: dict[str, Any] | None = None
    container_id: str = ""
    ever_started: bool = False

    def terminated_dict(self) -> dict[str, Any]:
        """This instance's termination in Kubernetes shape."""
        out: dict[str, Any] = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "containerID": self.container_id,
        }
        if self.message:
            out["message"] = self.message
        return out

    def to_status(self) -> dict[str, Any]:
        """The containerStatuses entry."""
        if self.state == "running":
            state: dict[str, Any] = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {"terminated": self.terminated_dict()}
        else:
            state = {
                "waiting": {"reason": self.reason, **({"message": self.message} if self.message else {})}
            }
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": f"zoo-local://{self.image}",
            "ready": self.state == "running",
            "started": self.state == "running",
            "restartCount": self.restart_count,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def pod_phase(restart_policy: str, init: list[ContainerState], main: list[ContainerState]) -> str:
    """The pod phase from its containers, following the kubelet's rules for each restart policy."""
    if restart_policy == "Never" and any(c.state == "terminated" and c.exit_code != 0 for c in init):
        return "Failed"
    if not all(c.state == "terminated" and c.exit_code == 0 for c in init):
        return "Pending"
    if not any(c.ever_started for c in main):
        return "Pending"
    done = all(c.state == "terminated" for c in main)
    if restart_policy == "Always" or not done:
        return "Running"
    failed = any(c.exit_code != 0 for c in main)
    if restart_policy == "OnFailure":
        return "Running" if failed else "Succeeded"
    return "Failed" if failed else "Succeeded"


def pod_conditions(
    previous: list[dict[str, Any]],
    phase: str,
    init: list[ContainerState],
    main: list[ContainerState],
    now: str,
) -> list[dict[str, Any]]:
    """PodScheduled, Initialized, ContainersReady, Ready; a transition time changes only with the status."""
    initialized = all(c.state == "terminated" and c.exit_code == 0 for c in init)
    ready = phase == "Running" and all(c.state == "running" for c in main)
    reason = "" if ready else ("PodCompleted" if phase in TERMINAL else "ContainersNotReady")
    wanted = [
        ("PodScheduled", True, ""),
        ("Initialized", initialized, "" if initialized else "ContainersNotInitialized"),
        ("ContainersReady", ready, reason),
        ("Ready", ready, reason),
    ]
    old = {c["type"]: c for c in previous}
    out = []
    for kind, ok, why in wanted:
        status = "True" if ok else "False"
        prev = old.get(kind)
        when = prev["lastTransitionTime"] if prev and prev.get("status") == status else now
        cond: dict[str, Any] = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": when,
        }
        if why:
            cond["reason"] = why
        out.append(cond)
    return out


def restart_wanted(restart_policy: str, exit_code: int) -> bool:
    """Whether a container that exited with exit_code is started again."""
    return restart_policy == "Always" or (restart_policy == "OnFailure" and exit_code != 0)


def backoff_seconds(restarts: int, base: float = 2.0, cap: float = 60.0) -> float:
    """CrashLoopBackOff delay before restart number restarts+1 (doubling, capped; shorter than a real node's)."""
    return min(cap, base * (2 ** max(0, restarts)))
