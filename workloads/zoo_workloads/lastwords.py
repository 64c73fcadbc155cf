"""Last words (issue 23): on a gang fault, the surviving rank that writes the run's checkpoints saves the last
step it completed before its supervisor kills it, so the restarted gang resumes at that step instead of the
last periodic step checkpoint. MindCluster offers the same at the moment of a fault (its "dying gasp" checkpoint).

Between zoo-launch and its training process, through three files in a directory only they share
(ENV_DIR, a fresh temporary directory per supervisor):

- `ready`, written by the training process once it holds a copy of a completed step: only a process that
  writes the run's checkpoints does (rank 0: data-parallel replicas hold the same weights, and rank 0's copy is
  the one whose BatchNorm moving statistics every periodic checkpoint has, so a resume from it stays bit-exact;
  with `save_every_rank` every rank saves its own copy). Without it the supervisor asks nothing and kills at
  once, as before.
- `request`, written by the supervisor when the gang channel orders a restart (a peer crashed or fell silent).
- `done`, the process's answer (JSON: `saved`, the checkpoint's `path`, `epoch`, `step`, `global_step`, or
  why not), written atomically.

Not a signal: a survivor whose peer died is usually blocked inside a collective (the all-reduce of the next
step waits for the dead rank), where its main thread runs no Python signal handler. A watcher thread answers
instead, from the host copy taken at the last completed step (`Held`), never from the live network, which the
blocked step may have half updated. A process hung without releasing the GIL never answers; the supervisor
kills it after BOUND_SECONDS and the resume falls back to the newest periodic checkpoint, as it does when the
writer itself is the rank that died or the whole gang is lost.

The decisions (`answer`, `asked`) are pure; `Watcher` and `ask` are the thread and the file I/O around them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_DIR = "ZOO_LAST_WORDS_DIR"
READY, REQUEST, DONE = "ready", "request", "done"
# How long a supervisor waits for the answer before it kills the process as before: a step checkpoint of the
# models here takes well under a second to write; a process that has not answered in 5 s is hung.
BOUND_SECONDS = 5.0
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Held:
    """The copy of the last completed step: `job` (a stepsave.Job: arrays, path, position, best accuracy) and
    whether the periodic writer already has that very step (`covered`: submitted or written), in which case
    last words wait for that write instead of writing the same file twice."""

    job: Any
    global_step: int
    covered: bool


def answer(held: Held | None) -> str:
    """What the process does on a request: "none" (no step completed since the checkpoint it resumed from, so
    that checkpoint is already the last step), "wait" (the periodic writer has this step: let it finish) or
    "write" (write the held copy)."""
    if held is None:
        return "none"
    return "wait" if held.covered else "write"


def asked(directory: Path | None, killed_by_peer: bool, stopping: bool) -> bool:
    """Whether a supervisor asks its process for last words before killing it: only when the gang restarts
    because of another rank (its own process is alive and well), zoo-launch is not stopping (a SIGTERM already
    makes the process checkpoint and exit 79), and the process said it holds a copy."""
    return directory is not None and killed_by_peer and not stopping and (directory / READY).exists()


def _write_json(path: Path, body: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, path)  # the supervisor never reads half an answer


class Watcher:
    """The training process's side: `hold` after every completed step (training thread), and a daemon thread
    that answers a request once with `write(job) -> manifest` or `wait(timeout) -> bool` (the periodic writer's
    drain)."""

    def __init__(
        self,
        directory: Path,
        write: Callable[[Any], dict[str, Any]],
        wait: Callable[[float], bool],
        poll: float = POLL_SECONDS,
    ) -> None:
        self.directory, self._write, self._wait, self._poll = directory, write, wait, poll
        self._lock = threading.Lock()
        self._held: Held | None = None
        self._thread: threading.Thread | None = None

    def hold(self, held: Held) -> None:
        """The copy of the step just completed replaces the previous one; the first says `ready`."""
        with self._lock:
            first, self._held = self._held is None, held
        if first:
            (self.directory / READY).write_text(str(os.getpid()), encoding="utf-8")
        if self._thread is None:
            # A daemon: it must never keep a finished (or SIGKILLed) process alive.
            self._thread = threading.Thread(target=self._loop, name="zoo-last-words", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        request = self.directory / REQUEST
        while not request.exists():
            time.sleep(self._poll)
        self.respond()

    def respond(self) -> dict[str, Any]:
        """Answer the request (on the watcher thread; callable directly in tests) and write `done`."""
        with self._lock:
            held = self._held
        kind = answer(held)
        body: dict[str, Any] = {"saved": False, "reason": "no step completed since the last checkpoint"}
        if held is not None:
            pos = held.job.position
            where = {"path": str(held.job.path), "epoch": pos.epoch, "step": pos.step}
            try:
                if kind == "write":
                    self._write(held.job)
                    body = {"saved": True, "global_step": held.global_step, **where}
                elif self._wait(BOUND_SECONDS):
                    body = {"saved": True, "global_step": held.global_step, "periodic": True, **where}
                else:
                    body = {"saved": False, "reason": "the periodic write of that step did not finish"}
            except Exception as err:  # noqa: BLE001 - the answer says why; the process is killed next anyway
                body = {"saved": False, "reason": f"{type(err).__name__}: {err}"[:300]}
        _write_json(self.directory / DONE, body)
        return body


def ask(
    directory: Path,
    alive: Callable[[], bool],
    bound: float = BOUND_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any] | None:
    """The supervisor's side: request last words and wait up to `bound` seconds for the answer; None when none
    came (the process hung, or ended first)."""
    _write_json(directory / REQUEST, {"time": time.time()})
    deadline = clock() + bound
    done = directory / DONE
    while clock() < deadline and alive():
        if done.exists():
            break
        sleep(POLL_SECONDS)
    try:
        body = json.loads(done.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def reset(directory: Path) -> None:
    """Before each start of the process: no answer or readiness of the previous one is left over."""
    for name in (READY, REQUEST, DONE):
        (directory / name).unlink(missing_ok=True)
