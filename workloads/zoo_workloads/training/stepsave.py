"""Periodic step checkpoints that do not stop training: when one is due, and the background writer.

A failure mid-epoch used to lose everything since the last epoch checkpoint. Every `save_checkpoint_steps` steps
and/or `save_checkpoint_seconds` seconds (config.py) the runner copies the train network's parameters to host
memory at a step boundary (checkpoints.snapshot) and hands the copy to `AsyncWriter`, whose one thread writes it
with the usual atomic protocol (temporary file, fsync, rename, manifest). Training does not wait for the disk.
At most one write is in flight; a newer snapshot replaces one still waiting, so a slow disk costs only
staleness, never memory or a queue. MindSpore's own `save_checkpoint(async_save=True)` likewise writes from a
thread; ours keeps the manifest protocol and the replace-the-pending rule. Pure Python (no MindSpore import):
the write function is passed in, so this is unit-tested with real threads and a fake write.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def step_checkpoint_due(
    *,
    step: int,
    steps_per_epoch: int,
    global_step: int,
    saved_global_step: int,
    saved_time: float,
    now: float,
    every_steps: int,
    every_seconds: float,
) -> bool:
    """Whether a step checkpoint is due after `step` of an epoch (global_step overall): `every_steps` steps or
    `every_seconds` seconds since the last checkpoint of any kind (at saved_global_step, saved_time); 0 turns a
    trigger off. Never at an epoch's last step: the epoch's own checkpoint (when due) has that position, and
    the next step's check catches up otherwise."""
    if step >= steps_per_epoch or global_step <= saved_global_step:
        return False
    if every_steps > 0 and global_step - saved_global_step >= every_steps:
        return True
    return every_seconds > 0 and now - saved_time >= every_seconds


@dataclasses.dataclass(frozen=True)
class Job:
    """One snapshot to write: the arrays, the file and what its manifest says."""

    arrays: dict[str, Any]
    path: Path
    position: Any  # checkpoints.Position
    best_top1: float


class AsyncWriter:
    """One background thread writing the newest submitted Job with `write(job) -> manifest`; then `after(job)`
    (retention) on the same thread. The training thread collects finished writes with `finished()` and a
    failure with `raise_error()`, so events and errors stay on the training thread."""

    def __init__(
        self, write: Callable[[Job], dict[str, Any]], after: Callable[[Job], None] | None = None
    ) -> None:
        self._write, self._after = write, after
        self._cond = threading.Condition()
        self._pending: Job | None = None
        self._busy = False
        self._done: list[tuple[Job, dict[str, Any]]] = []
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        self.replaced = 0  # snapshots dropped because a newer one came before their turn

    def submit(self, job: Job) -> None:
        """Queue job for writing; a job still waiting is replaced (counted in `replaced`)."""
        with self._cond:
            if self._pending is not None:
                self.replaced += 1
            self._pending = job
            if self._thread is None:
                # A daemon: a killed process loses its in-flight write like a SIGKILL would, and the manifest
                # protocol makes that write invisible to resume.
                self._thread = threading.Thread(target=self._loop, name="zoo-step-checkpoint", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None:
                    self._cond.wait()
                job, self._pending, self._busy = self._pending, None, True
            try:
                manifest = self._write(job)
                if self._after is not None:
                    self._after(job)
                outcome: tuple[tuple[Job, dict[str, Any]] | None, Exception | None] = (
                    (job, manifest),
                    None,
                )
            except Exception as err:  # noqa: BLE001 - handed to the training thread, which raises it
                outcome = (None, err)
            with self._cond:
                done, error = outcome
                if done is not None:
                    self._done.append(done)
                if error is not None and self._error is None:
                    self._error = error
                self._busy = False
                self._cond.notify_all()

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing being written."""
        with self._cond:
            return self._pending is None and not self._busy

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job is written (or failed); False when `timeout` s passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def finished(self) -> list[tuple[Job, dict[str, Any]]]:
        """The writes completed since the last call, oldest first, with their manifests."""
        with self._cond:
            done, self._done = self._done, []
            return done

    def raise_error(self) -> None:
        """Raise the background write's failure, if there was one (once)."""
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            raise error
