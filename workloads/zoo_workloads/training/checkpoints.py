"""Checkpoint files: durable atomic writes, a manifest that proves a file complete, retention, and resuming.

Files are <dir>/<model>-<epoch>.ckpt (written at the end of an epoch), <dir>/<model>-<epoch>_<step>.ckpt
(written mid-epoch by a graceful stop; MindSpore's ModelCheckpoint names its files `prefix-epoch_step.ckpt` the
same way) and <dir>/<model>-best.ckpt. The train network is saved whole: weights, optimizer moments, the
optimizer's global_step (which indexes the per-step learning rates, so the schedule continues where it stopped)
and any loss-scale parameter.

A write goes to a hidden temporary name, is fsynced, renamed into place and the directory fsynced; only then is
the manifest `<file>.manifest.json` (epoch, step, global_step, size, sha256, time) written the same way. A
checkpoint without a manifest, or whose size or sha256 disagrees with it, is incomplete and never loaded by the
automatic resume, which falls back to the previous complete one. The file helpers here are pure Python (MindSpore
is imported only by save/load/restore), so they are unit-tested without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from zoo_workloads import contract
from zoo_workloads.errors import ConfigError

_CKPT_FILE = re.compile(r"^(?P<model>.+)-(?P<epoch>\d+)(?:_(?P<step>\d+))?\.ckpt$")
MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_MARK = ".partial"
MANIFEST_VERSION = 1
_HASH_CHUNK = 1 << 20


def epoch_path(directory: Path, model: str, epoch: int) -> Path:
    """Path of the checkpoint written at the end of an epoch."""
    return directory / f"{model}-{epoch}.ckpt"


def step_path(directory: Path, model: str, epoch: int, step: int) -> Path:
    """Path of a checkpoint written after `step` steps of `epoch` (a graceful stop mid-epoch)."""
    return directory / f"{model}-{epoch}_{step}.ckpt"


def best_path(directory: Path, model: str) -> Path:
    """Path of the best checkpoint (highest eval top-1)."""
    return directory / f"{model}-best.ckpt"


def manifest_path(path: Path) -> Path:
    """The manifest that marks checkpoint `path` complete."""
    return path.with_name(path.name + MANIFEST_SUFFIX)


@dataclasses.dataclass(frozen=True, order=True)
class Position:
    """Where training stands: `epoch` (1-based) and the steps done within it; ordered by global_step."""

    global_step: int
    epoch: int
    step: int
    steps_per_epoch: int

    @property
    def epoch_done(self) -> bool:
        """Whether the epoch was finished (the checkpoint of an epoch's end)."""
        return self.step >= self.steps_per_epoch

    def resume_point(self) -> tuple[int, int]:
        """(epochs fully done, steps to skip in the next epoch) for continuing after this position."""
        if self.epoch_done:
            return self.epoch, 0
        return self.epoch - 1, self.step


def stale_epochs(epochs: list[int], keep: int) -> list[int]:
    """Which epoch checkpoints to delete so that only the last `keep` remain (keep 0 = keep all)."""
    if keep <= 0:
        return []
    return sorted(epochs)[:-keep] if len(epochs) > keep else []


def parse_name(name: str, model: str) -> tuple[int, int | None] | None:
    """(epoch, step or None for an epoch's end) of a checkpoint file name of `model`, else None."""
    match = _CKPT_FILE.match(name)
    if not match or match["model"] != model:
        return None
    return int(match["epoch"]), (int(match["step"]) if match["step"] is not None else None)


def saved_files(directory: Path, model: str) -> list[Path]:
    """Epoch and mid-epoch checkpoint files of `model` in directory, oldest first (by epoch, then step)."""
    found: list[tuple[int, float, Path]] = []
    for item in directory.glob(f"{model}-*.ckpt"):
        parsed = parse_name(item.name, model)
        if parsed is not None:
            epoch, step = parsed
            found.append((epoch, float("inf") if step is None else step, item))
    return [path for _, _, path in sorted(found)]


def saved_epochs(directory: Path, model: str) -> list[int]:
    """Epochs that have an end-of-epoch checkpoint of this model in directory."""
    return sorted(
        e for e, s in (parse_name(p.name, model) for p in saved_files(directory, model)) if s is None
    )


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some filesystems do not allow opening a directory; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def partial_path(path: Path) -> Path:
    """The hidden temporary name a checkpoint is written under before its rename (ends in .ckpt, as MindSpore
    appends that suffix to any other name)."""
    return path.with_name(f".{path.stem}{PARTIAL_MARK}.ckpt")


def commit(
    partial: Path, path: Path, position: Position, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Make a fully written `partial` file the checkpoint `path`: fsync, rename, fsync the directory, then write
    its manifest (atomically too). Returns the manifest."""
    _fsync_file(partial)
    manifest = {
        "version": MANIFEST_VERSION,
        "file": path.name,
        "epoch": position.epoch,
        "step": position.step,
        "steps_per_epoch": position.steps_per_epoch,
        "global_step": position.global_step,
        "size": partial.stat().st_size,
        "sha256": sha256_of(partial),
        "time": round(time.time(), 3),
        **(extra or {}),
    }
    manifest_path(path).unlink(missing_ok=True)  # an old manifest must never vouch for the new file
    os.replace(partial, path)
    _fsync_dir(path.parent)
    target = manifest_path(path)
    tmp = target.with_name(f".{target.name}{PARTIAL_MARK}")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    _fsync_dir(path.parent)
    return manifest


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of checkpoint `path`, or None when it is missing or unreadable."""
    try:
        data = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def verify(path: Path, *, full: bool = True) -> str | None:
    """Why checkpoint `path` is not complete (None when it is): no manifest, another file's manifest, a size
    or (with `full`) sha256 mismatch."""
    manifest = read_manifest(path)
    if manifest is None:
        return "no manifest (the write did not finish)"
    if manifest.get("file") != path.name:
        return f"manifest names {manifest.get('file')!r}"
    try:
        size = path.stat().st_size
    except OSError as err:
        return f"unreadable: {err.strerror}"
    if size != manifest.get("size"):
        return f"size {size} bytes, manifest says {manifest.get('size')}"
    if full and sha256_of(path) != manifest.get("sha256"):
        return "sha256 does not match the manifest (corrupted)"
    return None


def position_of(manifest: dict[str, Any]) -> Position:
    """The training position a manifest records."""
    return Position(
        int(manifest["global_step"]),
        int(manifest["epoch"]),
        int(manifest["step"]),
        int(manifest["steps_per_epoch"]),
    )


@dataclasses.dataclass(frozen=True)
class Found:
    """The outcome of looking for a checkpoint to resume from."""

    path: Path | None
    manifest: dict[str, Any] | None
    skipped: tuple[tuple[Path, str], ...] = ()  # (file, why) of newer checkpoints that were not usable


def _complete_elsewhere(name: str, peers: list[Path]) -> bool:
    return all(read_manifest(peer / name) is not None for peer in peers)


# The volumes a checkpoint path may lie on (contract.py): below them no component may be a symbolic link.
VOLUME_ROOTS = (Path(contract.CHECKPOINT_DIR), Path(contract.FROM_DIR))


def symlink_problem(path: Path, roots: tuple[Path, ...] = VOLUME_ROOTS) -> str | None:
    """Why `path` must not be read as a checkpoint, or None: it, its manifest, or a directory between it and the
    volume it lies on is a symbolic link. Whoever can write to a shared checkpoint volume could otherwise plant a
    link that makes a job resume from (or read) a file outside its own run directory. Paths outside the volumes
    (weights baked into the image) are the image's business."""
    if ".." in path.parts:
        return f"{path}: '..' is not allowed in a checkpoint path"
    root = next((r for r in roots if path == r or r in path.parents), None)
    candidates = [path, manifest_path(path)]
    if root is not None:
        candidates += [p for p in path.parents if root in p.parents]
    for item in candidates:
        if item.is_symlink():
            return f"{item} is a symbolic link: checkpoints are read only from real files in their volume"
    return None


def newest_complete(directory: Path, model: str, peers: list[Path] | None = None) -> Found:
    """The newest verified checkpoint of `model` in directory (the epoch and mid-epoch files, never -best).

    `peers` are the directories of the other ranks that this rank can see: a checkpoint counts only when every
    one of them has a manifest for the same file name, so all ranks resume from the same position. Newer files
    that fail verification are reported in `skipped`, newest first.
    """
    skipped: list[tuple[Path, str]] = []
    if not directory.is_dir():
        return Found(None, None)
    for path in reversed(saved_files(directory, model)):
        why = symlink_problem(path) or verify(path)
        if why is None and peers and not _complete_elsewhere(path.name, peers):
            why = "not completed by every rank"
        if why is None:
            manifest = read_manifest(path)
            if manifest is not None:
                return Found(path, manifest, tuple(skipped))
            why = "manifest vanished"
        skipped.append((path, why))
    return Found(None, None, tuple(skipped))


def stale_files(files: list[Path], model: str, keep: int, keep_steps: int | None = None) -> list[Path]:
    """Which of `files` (oldest first, as saved_files gives them) retention deletes. Without `keep_steps`: all
    but the last `keep` of every kind together. With it, two budgets: the last `keep` epoch-end files and,
    apart from them, the last `keep_steps` mid-epoch (step) files, so frequent step checkpoints never push an
    epoch checkpoint out. 0 keeps all of a kind."""

    def tail_stale(items: list[Path], k: int) -> list[Path]:
        return items[:-k] if 0 < k < len(items) else []

    if keep_steps is None:
        return tail_stale(files, keep)
    kinds = [(p, parse_name(p.name, model)) for p in files]
    epochs = [p for p, parsed in kinds if parsed is not None and parsed[1] is None]
    steps = [p for p, parsed in kinds if parsed is not None and parsed[1] is not None]
    stale = set(tail_stale(epochs, keep)) | set(tail_stale(steps, keep_steps))
    return [p for p in files if p in stale]


def prune(
    directory: Path, model: str, keep: int, keep_steps: int | None = None, leftovers: bool = True
) -> list[Path]:
    """Delete the checkpoints retention no longer keeps (stale_files; with their manifests) and, unless
    `leftovers` is False (a write may be in flight), any leftover partial writes; returns the deleted
    checkpoint paths."""
    removed = []
    for path in stale_files(saved_files(directory, model), model, keep, keep_steps):
        manifest_path(path).unlink(missing_ok=True)  # manifest first: a file without one is never trusted
        path.unlink(missing_ok=True)
        removed.append(path)
    for leftover in directory.glob(f".*{PARTIAL_MARK}*") if leftovers else ():
        leftover.unlink(missing_ok=True)
    return removed


def save(cell: Any, path: Path, position: Position, best_top1: float) -> dict[str, Any]:
    """Save a cell's parameters with its position and best accuracy, atomically; returns the manifest."""
    import mindspore as ms

    partial = partial_path(path)
    partial.unlink(missing_ok=True)
    ms.save_checkpoint(
        cell,
        str(partial),
        append_dict={"epoch": position.epoch, "step": position.step, "best_top1": float(best_top1)},
    )
    return commit(partial, path, position)


def snapshot(cell: Any) -> dict[str, Any]:
    """An in-memory copy of every parameter of cell (weights, optimizer moments, global_step, loss scale) as
    numpy arrays, keyed by parameter name as save_checkpoint keys a Cell's: the step boundary's state, which
    training may then overwrite while a background thread writes the copy (save_snapshot)."""
    return {param.name: param.asnumpy().copy() for _, param in cell.parameters_and_names()}


def save_snapshot(arrays: dict[str, Any], path: Path, position: Position, best_top1: float) -> dict[str, Any]:
    """Write a snapshot() like save() writes a cell (same entries, same append_dict), atomically; the
    manifest. Safe off the training thread: it touches only the copied arrays."""
    import mindspore as ms

    partial = partial_path(path)
    partial.unlink(missing_ok=True)
    ms.save_checkpoint(
        [{"name": name, "data": ms.Tensor(value)} for name, value in arrays.items()],
        str(partial),
        append_dict={"epoch": position.epoch, "step": position.step, "best_top1": float(best_top1)},
    )
    return commit(partial, path, position)


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint; ConfigError (a permanent failure) when it does not exist or is unreadable."""
    import mindspore as ms

    link = symlink_problem(Path(path))
    if link is not None:
        raise ConfigError(f"checkpoint {link}")
    if not Path(path).is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        return ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError) as err:
        raise ConfigError(f"checkpoint {path}: cannot load: {' '.join(str(err).split())[:300]}") from err


NON_NETWORK_PREFIXES = (
    "moments.",
    "accum.",
    "momentum.",
    "global_step",
    "learning_rate",
    "damping",
    "epoch",
    "step",
    "best_top1",
    "scale_sense",
    "current_iterator_step",
    "last_overflow_iterator_step",
)


CLASSIFIER = ("fc.weight", "fc.bias")  # the trunk's final Dense (ResNet.fc)


def network_entries(
    cell: Any, model: str, data: dict[str, Any], path: str | Path = "", new_classifier: bool = False
) -> dict[str, Any]:
    """The checkpoint dict with a ModelZoo-layout network renamed to our names (models.modelzoo); ConfigError
    naming every parameter that is missing or has another shape. Never a partial load, with one stated
    exception: new_classifier drops the classifier when only its class count differs (fine-tuning ImageNet
    weights to K classes keeps a fresh fc; the caller says so in the log)."""
    from zoo_workloads.models import modelzoo

    own = {p.name: tuple(p.shape) for p in cell.get_parameters()}
    if modelzoo.is_reference_layout(model, data, own):
        data = modelzoo.from_reference(model, data, own)
    if new_classifier and all(k in data for k in CLASSIFIER):
        weight = tuple(data[CLASSIFIER[0]].shape)
        if weight != own[CLASSIFIER[0]] and weight[1:] == own[CLASSIFIER[0]][1:]:
            data = {k: v for k, v in data.items() if k not in CLASSIFIER}
            own = {k: v for k, v in own.items() if k not in CLASSIFIER}
    problems = modelzoo.match_network(data, own)
    if problems:
        extra = [k for k in data if k not in own and not k.startswith(NON_NETWORK_PREFIXES)]
        raise ConfigError(modelzoo.describe_problems(str(path), model, problems, extra))
    return data


def load_network(cell: Any, model: str, path: str | Path, new_classifier: bool = False) -> int:
    """Load a checkpoint's network weights (ours or the ModelZoo reference's layout) into cell, every parameter
    required (optimizer state ignored; the classifier too, unless new_classifier and only its class count
    differs); returns the number of parameters loaded. For `pretrained`."""
    import mindspore as ms

    data = network_entries(cell, model, load(path), path, new_classifier)
    usable = {p.name: data[p.name] for p in cell.get_parameters() if p.name in data}
    ms.load_param_into_net(cell, usable, strict_load=False)
    return len(usable)


def restore(cell: Any, path: str | Path, model: str | None = None) -> tuple[int, float]:
    """Load a checkpoint into cell (extra entries are ignored; every network parameter required, in our layout
    or, with `model`, the ModelZoo reference's); returns (epoch, best_top1) stored in it."""
    import mindspore as ms

    data = load(path)
    epoch = int(data.pop("epoch").asnumpy()) if "epoch" in data else 0
    best = float(data.pop("best_top1").asnumpy()) if "best_top1" in data else 0.0
    data.pop("step", None)
    for schedule in ("learning_rate", "damping"):
        data.pop(schedule, None)  # recomputed from the config; global_step indexes into the new one
    if model is not None:
        from zoo_workloads.models import modelzoo

        own_names = [p.name for p in cell.get_parameters()]
        if modelzoo.is_reference_layout(model, data, own_names):
            data = modelzoo.from_reference(model, data, own_names)
    _refuse_mismatch(cell, data, path, model)
    missing, _ = ms.load_param_into_net(cell, data, strict_load=False)
    trained = [name for name in missing if "moments" not in name and "global_step" not in name]
    if len(trained) == len(list(cell.get_parameters())):
        raise ConfigError(f"checkpoint {path}: none of its parameters match this model")
    return epoch, best


def _refuse_mismatch(cell: Any, data: dict[str, Any], path: str | Path, model: str | None) -> None:
    """ConfigError naming each network parameter of cell that data lacks or holds in another shape (optimizer
    state is not required: a weights-only checkpoint resumes with fresh moments); nothing when none match at
    all (restore's own 'none of its parameters' error says that better)."""
    from zoo_workloads.models import modelzoo

    own = {
        p.name: tuple(p.shape) for p in cell.get_parameters() if not p.name.startswith(NON_NETWORK_PREFIXES)
    }
    problems = modelzoo.match_network(data, own)
    if problems and len(problems) < len(own):
        raise ConfigError(modelzoo.describe_problems(str(path), model or "this model", problems, []))
