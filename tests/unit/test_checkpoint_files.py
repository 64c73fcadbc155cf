"""Checkpoint files without MindSpore: atomic commit, manifest verification, fallback to the previous complete
checkpoint, agreement between ranks, keep-N retention, resume positions and the graceful-stop exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo_operator import conditions
from zoo_workloads import errors
from zoo_workloads.data.sampling import shard_indices
from zoo_workloads.training import checkpoints as ck

STEPS = 5


def _pos(epoch: int, step: int = STEPS) -> ck.Position:
    return ck.Position((epoch - 1) * STEPS + step, epoch, step, STEPS)


def _write(directory: Path, name: str, position: ck.Position, payload: bytes | None = None) -> Path:
    """Write a fake checkpoint the way save() does: partial name first, then commit."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    partial = ck.partial_path(path)
    partial.write_bytes(payload if payload is not None else f"weights of {name}".encode() * 50)
    ck.commit(partial, path, position)
    return path


def test_commit_renames_and_writes_the_manifest_last(tmp_path: Path) -> None:
    path = _write(tmp_path, "m-1.ckpt", _pos(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-1.ckpt", "m-1.ckpt.manifest.json"]
    manifest = json.loads(ck.manifest_path(path).read_text())
    assert manifest["epoch"] == 1 and manifest["step"] == STEPS and manifest["global_step"] == STEPS
    assert manifest["sha256"] == ck.sha256_of(path) and manifest["size"] == path.stat().st_size
    assert manifest["file"] == "m-1.ckpt" and manifest["time"] > 0
    assert ck.verify(path) is None


def test_partial_file_is_never_a_checkpoint(tmp_path: Path) -> None:
    _write(tmp_path, "m-1.ckpt", _pos(1))
    ck.partial_path(tmp_path / "m-2.ckpt").write_bytes(b"half of it")  # killed mid-write
    assert ck.saved_files(tmp_path, "m") == [tmp_path / "m-1.ckpt"]
    assert ck.newest_complete(tmp_path, "m").path == tmp_path / "m-1.ckpt"


@pytest.mark.parametrize("damage", ["truncate", "flip", "no_manifest", "bad_manifest", "grown"])
def test_damaged_newest_checkpoint_is_skipped_for_the_previous(tmp_path: Path, damage: str) -> None:
    _write(tmp_path, "m-1.ckpt", _pos(1))
    good = _write(tmp_path, "m-2.ckpt", _pos(2))
    newest = _write(tmp_path, "m-3.ckpt", _pos(3))
    data = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        newest.write_bytes(data[:10] + bytes([data[10] ^ 0x01]) + data[11:])
    elif damage == "no_manifest":
        ck.manifest_path(newest).unlink()
    elif damage == "bad_manifest":
        ck.manifest_path(newest).write_text("{not json")
    else:
        newest.write_bytes(data + b"x")
    found = ck.newest_complete(tmp_path, "m")
    assert found.path == good and found.manifest is not None and found.manifest["epoch"] == 2
    assert [p for p, _ in found.skipped] == [newest]
    why = found.skipped[0][1]
    expected = {
        "truncate": "size",
        "flip": "sha256",
        "no_manifest": "no manifest",
        "bad_manifest": "no manifest",
        "grown": "size",
    }[damage]
    assert expected in why


def test_a_manifest_of_another_file_does_not_vouch(tmp_path: Path) -> None:
    one = _write(tmp_path, "m-1.ckpt", _pos(1))
    two = tmp_path / "m-2.ckpt"
    two.write_bytes(one.read_bytes())
    ck.manifest_path(two).write_text(ck.manifest_path(one).read_text())
    assert "manifest names" in str(ck.verify(two))
    assert ck.newest_complete(tmp_path, "m").path == one


def test_mid_epoch_checkpoints_order_between_epochs(tmp_path: Path) -> None:
    _write(tmp_path, "m-1.ckpt", _pos(1))
    _write(tmp_path, "m-2_3.ckpt", _pos(2, 3))
    _write(tmp_path, "m-10_1.ckpt", _pos(10, 1))
    _write(tmp_path, "m-2.ckpt", _pos(2))
    ck.best_path(tmp_path, "m").write_bytes(b"best")
    assert [p.name for p in ck.saved_files(tmp_path, "m")] == [
        "m-1.ckpt",
        "m-2_3.ckpt",
        "m-2.ckpt",
        "m-10_1.ckpt",
    ]
    assert ck.saved_epochs(tmp_path, "m") == [1, 2]
    found = ck.newest_complete(tmp_path, "m")
    assert found.path == tmp_path / "m-10_1.ckpt"  # -best is never resumed from
    assert ck.position_of(found.manifest).resume_point() == (9, 1)


def test_resume_point_of_positions() -> None:
    assert _pos(2).resume_point() == (2, 0)  # end of epoch 2: continue with epoch 3 from its start
    assert _pos(3, 2).resume_point() == (2, 2)  # 2 steps into epoch 3: redo epoch 3 minus those 2 steps
    assert _pos(3, 2) < _pos(3) < _pos(4, 1)


def test_ranks_resume_from_a_checkpoint_every_rank_completed(tmp_path: Path) -> None:
    r0, r1 = tmp_path / "rank_0", tmp_path / "rank_1"
    for directory in (r0, r1):
        _write(directory, "m-1.ckpt", _pos(1))
        _write(directory, "m-2.ckpt", _pos(2))
    _write(r0, "m-3_2.ckpt", _pos(3, 2))  # rank 0 stopped gracefully; rank 1 was killed before it could
    found = ck.newest_complete(r0, "m", peers=[r1])
    assert found.path == r0 / "m-2.ckpt"
    assert found.skipped == ((r0 / "m-3_2.ckpt", "not completed by every rank"),)
    assert ck.newest_complete(r1, "m", peers=[r0]).path == r1 / "m-2.ckpt"


def test_retention_keeps_the_last_k_with_their_manifests(tmp_path: Path) -> None:
    for epoch in (1, 2, 3):
        _write(tmp_path, f"m-{epoch}.ckpt", _pos(epoch))
    _write(tmp_path, "m-4_1.ckpt", _pos(4, 1))
    ck.best_path(tmp_path, "m").write_bytes(b"x")
    (tmp_path / "m_other-1.ckpt").write_bytes(b"x")
    ck.partial_path(tmp_path / "m-5.ckpt").write_bytes(b"leftover")
    removed = ck.prune(tmp_path, "m", 2)
    assert [p.name for p in removed] == ["m-1.ckpt", "m-2.ckpt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m-3.ckpt",
        "m-3.ckpt.manifest.json",
        "m-4_1.ckpt",
        "m-4_1.ckpt.manifest.json",
        "m-best.ckpt",
        "m_other-1.ckpt",
    ]
    assert ck.prune(tmp_path, "m", 0) == []


def test_nothing_to_resume_from(tmp_path: Path) -> None:
    assert ck.newest_complete(tmp_path / "absent", "m") == ck.Found(None, None)
    ck.epoch_path(tmp_path, "m", 1).write_bytes(b"no manifest")
    found = ck.newest_complete(tmp_path, "m")
    assert found.path is None and len(found.skipped) == 1


def test_recommit_replaces_the_old_manifest(tmp_path: Path) -> None:
    path = _write(tmp_path, "m-1.ckpt", _pos(1), b"first")
    _write(tmp_path, "m-1.ckpt", _pos(1), b"second, longer")
    assert path.read_bytes() == b"second, longer" and ck.verify(path) is None


def test_graceful_stop_exit_code_is_one_fact_in_both_packages() -> None:
    assert errors.EXIT_STOPPED == conditions.EXIT_STOPPED
    assert errors.EXIT_STOPPED not in (
        0,
        1,
        errors.EXIT_CONFIG,
        errors.EXIT_DATASET_MISSING,
        errors.EXIT_RETRYABLE,
    )
    assert errors.EXIT_STOPPED < 128  # never mistaken for "killed by a signal"
    failure = errors.classify(errors.Stopped("stopped"))
    assert (failure.exit_code, failure.reason, failure.retryable) == (errors.EXIT_STOPPED, "Stopped", True)


def test_resumed_epoch_sees_the_same_order_minus_the_done_steps() -> None:
    # The data order of an epoch depends only on (seed, epoch): a resumed run that sets the epoch gets it back.
    first = shard_indices(100, 2, 1, shuffle=True, seed=7, epoch=3)
    assert first == shard_indices(100, 2, 1, shuffle=True, seed=7, epoch=3)
    assert first != shard_indices(100, 2, 1, shuffle=True, seed=7, epoch=2)
