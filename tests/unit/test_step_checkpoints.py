"""Step checkpoints (issue 23), the pure parts: when one is due, retention that keeps step and epoch checkpoints
apart, and the background writer (real threads, a write function that blocks until the test lets it go)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from zoo_workloads import config
from zoo_workloads.training import checkpoints as ck
from zoo_workloads.training import stepsave

DUE = {
    "steps_per_epoch": 10,
    "saved_global_step": 20,
    "saved_time": 100.0,
    "every_steps": 0,
    "every_seconds": 0.0,
}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"step": 5, "global_step": 25, "now": 1e9}, False),  # both triggers off
        ({"step": 5, "global_step": 25, "now": 101.0, "every_steps": 5}, True),
        ({"step": 4, "global_step": 24, "now": 1e9, "every_steps": 5}, False),  # 4 steps since, not 5
        ({"step": 5, "global_step": 25, "now": 120.0, "every_seconds": 20.0}, True),
        ({"step": 5, "global_step": 25, "now": 119.9, "every_seconds": 20.0}, False),
        # either trigger suffices
        ({"step": 5, "global_step": 25, "now": 130.0, "every_steps": 50, "every_seconds": 20.0}, True),
        # never at an epoch's last step (the epoch checkpoint's position), nor twice at one position
        ({"step": 10, "global_step": 30, "now": 1e9, "every_steps": 1}, False),
        ({"step": 5, "global_step": 20, "now": 1e9, "every_steps": 1, "every_seconds": 1.0}, False),
    ],
)
def test_step_checkpoint_due(case: dict, expected: bool) -> None:
    assert stepsave.step_checkpoint_due(**{**DUE, **case}) is expected


def test_default_job_loses_less_than_30_seconds_and_settings_are_validated() -> None:
    defaults = config.default_hyperparameters("resnet50_bam")
    assert 0 < defaults["save_checkpoint_seconds"] < 30
    assert defaults["keep_step_checkpoints"] >= 1
    assert "save_checkpoint_seconds" in (config.check("save_checkpoint_seconds", -1) or "")
    assert "save_checkpoint_steps" in (config.check("save_checkpoint_steps", 1.5) or "")
    assert config.check("save_checkpoint_steps", 50) is None


def _touch(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_bytes(b"x")
    ck.manifest_path(path).write_text("{}")
    return path


def test_retention_keeps_step_checkpoints_apart_from_epoch_ones(tmp_path: Path) -> None:
    for name in ("m-1.ckpt", "m-2.ckpt", "m-2_3.ckpt", "m-3_1.ckpt", "m-3_2.ckpt", "m-3_4.ckpt"):
        _touch(tmp_path, name)
    leftover = ck.partial_path(tmp_path / "m-3_5.ckpt")
    leftover.write_bytes(b"being written")
    # Together (the old rule) keep 2 would have deleted both epoch checkpoints.
    assert [p.name for p in ck.stale_files(ck.saved_files(tmp_path, "m"), "m", 2)] == [
        "m-1.ckpt",
        "m-2_3.ckpt",
        "m-2.ckpt",
        "m-3_1.ckpt",
    ]
    removed = ck.prune(tmp_path, "m", 2, keep_steps=2, leftovers=False)
    assert [p.name for p in removed] == ["m-2_3.ckpt", "m-3_1.ckpt"]
    assert [p.name for p in ck.saved_files(tmp_path, "m")] == [
        "m-1.ckpt",
        "m-2.ckpt",
        "m-3_2.ckpt",
        "m-3_4.ckpt",
    ]
    assert not ck.manifest_path(tmp_path / "m-3_1.ckpt").exists()
    assert leftover.exists()  # a write may be in flight: its partial file stays
    assert [p.name for p in ck.prune(tmp_path, "m", 1, keep_steps=0)] == ["m-1.ckpt"]
    assert not leftover.exists()


class _Disk:
    """A write function that blocks until released, recording what it wrote."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.written: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def write(self, job: stepsave.Job) -> dict:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.started.release()
        assert self.release.acquire(timeout=60), "the test never released the write"
        with self.lock:
            self.in_flight -= 1
        if job.path.name == "fail":
            raise OSError(28, "No space left on device")
        self.written.append(job.path.name)
        return {"time": 1.0, "file": job.path.name}


def _job(name: str) -> stepsave.Job:
    return stepsave.Job({}, Path(name), None, 0.0)


def test_writer_has_one_write_in_flight_and_a_newer_snapshot_replaces_the_pending_one() -> None:
    disk, after = _Disk(), []
    writer = stepsave.AsyncWriter(disk.write, lambda job: after.append(job.path.name))
    writer.submit(_job("a"))
    assert disk.started.acquire(timeout=60), "the writer thread did not start writing a"
    writer.submit(_job("b"))  # waits behind a ...
    writer.submit(_job("c"))  # ... and is replaced by c before its turn
    assert not writer.idle and writer.replaced == 1
    assert writer.drain(timeout=0.2) is False  # a is still being written: the caller was not blocked
    disk.release.release()
    assert disk.started.acquire(timeout=60), "the writer did not go on to the pending snapshot"
    disk.release.release()
    assert writer.drain(timeout=60), "the writer did not finish"
    assert disk.written == ["a", "c"] and after == ["a", "c"] and disk.max_in_flight == 1
    assert [(job.path.name, manifest["file"]) for job, manifest in writer.finished()] == [
        ("a", "a"),
        ("c", "c"),
    ]
    assert writer.finished() == []
    writer.raise_error()  # nothing failed


def test_a_failed_background_write_is_raised_on_the_training_thread() -> None:
    disk = _Disk()
    writer = stepsave.AsyncWriter(disk.write)
    writer.submit(_job("fail"))
    disk.release.release()
    assert writer.drain(timeout=60), "the failing write did not end"
    with pytest.raises(OSError, match="No space left"):
        writer.raise_error()
    writer.raise_error()  # raised once
    writer.submit(_job("ok"))  # the writer keeps working after a failure
    disk.release.release()
    assert writer.drain(timeout=60) and disk.written == ["ok"]
