"""Failure classes of a training run and their exit codes (docs/contracts.md, "Exit codes").

Pure Python: the launcher imports it without MindSpore. The operator fails a job at once on 64 and 66 and
restarts the gang on anything else, so a wrong class here turns a permanent error into a restart loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zoo_workloads.contract import (  # the exit codes are a fact of the border (contract.py)
    EXIT_CONFIG,
    EXIT_DATASET_MISSING,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RETRYABLE,
    EXIT_STOPPED,
    EXIT_UNEXPECTED,
)

__all__ = [
    "EXIT_CONFIG",
    "EXIT_DATASET_MISSING",
    "EXIT_OK",
    "EXIT_RETRYABLE",
    "EXIT_STOPPED",
    "EXIT_UNEXPECTED",
    "ConfigError",
    "DatasetMissing",
    "Failure",
    "PeerLost",
    "RankTableTimeout",
    "Stopped",
    "ZooError",
    "classify",
    "one_line",
]

# Substrings of MindSpore's (lower-cased) error messages when a peer dies or a collective times out.
_PEER_LOST_MARKERS = (
    "heartbeat",
    "timed out",
    "timeout",
    "peer",
    "connection",
    "disconnect",
    "node is lost",
    "cluster is not ready",
    "hccl",
    "failed to register",
    # a collective that fails because its peer is gone (seen when a worker is killed mid-training)
    "allreduce",
    "allgather",
    "reducescatter",
    "broadcast",
    "grad_reducer",
    "collective",
)
# MindSpore wraps errors in banners and call stacks; the first sentence is what a person needs.
_BANNER = re.compile(r"-{4,}")
_STACK_MARKERS = (
    "- C++ Call Stack",
    "- The Function Call Stack",
    "C++ Call Stack:",
    "The Function Call Stack:",
)


class ZooError(Exception):
    """A failure with a known class: its exit code, reason and whether a restart may help."""

    exit_code: int = EXIT_UNEXPECTED
    reason: str = "Error"
    retryable: bool = False


class ConfigError(ZooError):
    """Bad configuration (unknown hyperparameter, bad value, unsupported device/optimizer): permanent."""

    exit_code = EXIT_CONFIG
    reason = "ConfigError"


class DatasetMissing(ZooError):
    """The dataset directory or split file does not exist or holds no samples: permanent."""

    exit_code = EXIT_DATASET_MISSING
    reason = "DatasetMissing"


class PeerLost(ZooError):
    """A peer rank died or a collective timed out: the gang should be restarted."""

    exit_code = EXIT_RETRYABLE
    reason = "PeerLost"
    retryable = True


class RankTableTimeout(ZooError):
    """The HCCL rank table never reached status "completed": retryable."""

    exit_code = EXIT_RETRYABLE
    reason = "RankTableTimeout"
    retryable = True


class Stopped(ZooError):
    """Training stopped on SIGTERM after writing a checkpoint; a restart resumes from it."""

    exit_code = EXIT_STOPPED
    reason = "Stopped"
    retryable = True


@dataclass(frozen=True)
class Failure:
    """How a run ended badly: what goes into the exit code and the termination message."""

    exit_code: int
    reason: str
    message: str
    retryable: bool


def one_line(text: str, limit: int = 600) -> str:
    """Collapse a message to one line of at most `limit` characters (termination messages are < 4 KiB)."""
    text = str(text)
    for marker in _STACK_MARKERS:
        head = text.split(marker, 1)[0]
        if head.strip(" -\n"):
            text = head
    flat = " ".join(_BANNER.sub(" ", text).split()).strip(" -")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def classify(exc: BaseException) -> Failure:
    """Map an exception to its exit code and reason; unknown errors are exit 1, not retryable by class."""
    if isinstance(exc, ZooError):
        return Failure(exc.exit_code, exc.reason, one_line(str(exc)), exc.retryable)
    if isinstance(exc, KeyboardInterrupt):
        return Failure(EXIT_INTERRUPTED, "Interrupted", "interrupted", True)
    message = one_line(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, (RuntimeError, TimeoutError, ConnectionError)):
        lowered = str(exc).lower()
        if isinstance(exc, (TimeoutError, ConnectionError)) or any(m in lowered for m in _PEER_LOST_MARKERS):
            return Failure(EXIT_RETRYABLE, "PeerLost", message, True)
    if isinstance(exc, MemoryError):
        return Failure(EXIT_UNEXPECTED, "OutOfMemory", message, False)
    return Failure(EXIT_UNEXPECTED, "UnexpectedError", message, False)
