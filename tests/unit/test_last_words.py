"""Last words (lastwords.py): the decisions on plain data, and the supervisor/training-process exchange with a
real watcher thread and real files (the write is a fake; test_resume_exact.py writes a real checkpoint)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from zoo_workloads import lastwords
from zoo_workloads.training import checkpoints


def _held(step: int, covered: bool = False) -> lastwords.Held:
    position = checkpoints.Position(8 + step, 2, step, 8)
    job = SimpleNamespace(path=Path(f"/ckpt/m-2_{step}.ckpt"), position=position)
    return lastwords.Held(job, position.global_step, covered)


def test_answer_writes_the_held_copy_waits_for_the_periodic_writer_or_has_nothing() -> None:
    assert (
        lastwords.answer(None) == "none"
    )  # nothing completed since the resumed checkpoint: it is the last step
    assert lastwords.answer(_held(3)) == "write"
    assert lastwords.answer(_held(4, covered=True)) == "wait"  # the periodic writer has that very step


@pytest.mark.parametrize(
    ("ready", "killed_by_peer", "stopping", "expected"),
    [
        (True, True, False, True),
        (False, True, False, False),  # a rank that writes no checkpoint (not rank 0) holds no copy
        (True, False, False, False),  # its own process crashed: nothing alive to ask
        (True, True, True, False),  # SIGTERM: the graceful stop checkpoints already
    ],
)
def test_asked_only_a_ready_survivor_of_a_peer_fault(
    tmp_path: Path, ready: bool, killed_by_peer: bool, stopping: bool, expected: bool
) -> None:
    if ready:
        (tmp_path / lastwords.READY).write_text("1")
    assert lastwords.asked(tmp_path, killed_by_peer, stopping) is expected
    assert lastwords.asked(None, True, False) is False  # no gang channel, no directory


def test_the_watcher_answers_with_the_last_held_step_from_its_own_thread(tmp_path: Path) -> None:
    written: list[tuple[int, str]] = []

    def write(job: Any) -> dict[str, Any]:
        written.append((job.position.step, threading.current_thread().name))
        return {}

    watcher = lastwords.Watcher(tmp_path, write, lambda _t: True, poll=0.01)
    assert not (tmp_path / lastwords.READY).exists()
    watcher.hold(_held(2))
    watcher.hold(_held(3))  # the newer completed step replaces the older copy
    assert (tmp_path / lastwords.READY).exists()
    body = lastwords.ask(tmp_path, alive=lambda: True, bound=30)
    assert body == {"saved": True, "global_step": 11, "path": "/ckpt/m-2_3.ckpt", "epoch": 2, "step": 3}
    assert written == [(3, "zoo-last-words")]  # once, on the watcher thread (the main one may be blocked)


def test_a_covered_step_waits_for_the_periodic_write_and_says_so(tmp_path: Path) -> None:
    waited: list[float] = []
    watcher = lastwords.Watcher(
        tmp_path, lambda _j: pytest.fail("wrote twice"), lambda t: not waited.append(t)
    )
    watcher.hold(_held(4, covered=True))
    body = watcher.respond()
    assert body["saved"] and body["periodic"] and body["step"] == 4 and waited == [lastwords.BOUND_SECONDS]
    assert json.loads((tmp_path / lastwords.DONE).read_text()) == body
    slow = lastwords.Watcher(tmp_path, lambda _j: {}, lambda _t: False)
    slow.hold(_held(4, covered=True))
    assert slow.respond()["saved"] is False


def test_a_failed_write_is_an_answer_not_a_crash(tmp_path: Path) -> None:
    def write(_job: Any) -> dict[str, Any]:
        raise OSError("No space left on device")

    watcher = lastwords.Watcher(tmp_path, write, lambda _t: True)
    watcher.hold(_held(3))
    body = watcher.respond()
    assert body == {"saved": False, "reason": "OSError: No space left on device"}


def test_a_hung_process_is_given_up_on_after_the_bound(tmp_path: Path) -> None:
    (tmp_path / lastwords.READY).write_text("1")  # ready, then hung: no watcher ever answers
    clock = iter(range(100)).__next__
    assert (
        lastwords.ask(
            tmp_path, alive=lambda: True, bound=5, clock=lambda: float(clock()), sleep=lambda _s: None
        )
        is None
    )
    assert (tmp_path / lastwords.REQUEST).exists()
    started = time.monotonic()
    assert lastwords.ask(tmp_path, alive=lambda: False, bound=30) is None  # a process that ended first
    assert time.monotonic() - started < 5
    lastwords.reset(tmp_path)
    assert not list(tmp_path.iterdir())  # the next process starts with no request or answer left over
