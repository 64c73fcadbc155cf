"""MindSpore dataset pipelines for training and evaluation (the only data module that imports MindSpore).

Images: Decode + RandomResizedCrop + flip [+ AutoAugment (ImageNet policy) | + colour jitter] + Normalize for
training; Resize(size * 256 / 224) + CenterCrop for evaluation. Videos: 16-frame clips resized and centre-cropped
to image_size, normalised with the UCF101 statistics of the seed. Samples are sharded by rank.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mindspore as ms
import mindspore.dataset as ds
import mindspore.dataset.transforms as T
import mindspore.dataset.vision as V
import numpy as np
from PIL import Image

from zoo_workloads.data import layouts, video
from zoo_workloads.data.sampling import shard_indices

IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IMAGENET_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]
VIDEO_MEAN = np.array([0.4345, 0.4051, 0.3775], dtype=np.float32)
VIDEO_STD = np.array([0.2768, 0.2713, 0.2737], dtype=np.float32)


@dataclass
class DataSpec:
    """What the trainer needs to know about a built pipeline."""

    dataset: ds.Dataset
    num_samples: int  # samples of this rank's shard per epoch (before batching)
    classes: list[str]
    steps: int  # batches per epoch on this rank
    sampler: ShardSampler | None = None  # set its epoch when resuming, so the shuffle order continues
    batch_size: int = 1  # samples per batch on this rank (training: every batch is full)


class ShardSampler(ds.Sampler):
    """Per-epoch shuffled, sharded (and optionally repeated) indices; see sampling.shard_indices."""

    def __init__(self, size: int, num_shards: int, shard_id: int, shuffle: bool, seed: int, repeats: int,
                 window: tuple[int, int] | None = None, epoch: int = 0) -> None:
        self.size, self.num_shards, self.shard_id = size, num_shards, shard_id
        self.shuffle, self.seed, self.repeats = shuffle, seed, repeats
        self.epoch = epoch
        # Samples [skip, end) of each epoch's order only: the rest of an epoch that a resumed run had begun.
        self.window = window
        super().__init__()  # reads len(self), so the fields come first

    def __iter__(self):
        order = shard_indices(self.size, self.num_shards, self.shard_id, shuffle=self.shuffle, seed=self.seed,
                              epoch=self.epoch, repeats=self.repeats)
        self.epoch += 1
        if self.window is not None:
            order = order[self.window[0]:self.window[1]]
        return iter(order)

    def __len__(self) -> int:
        full = len(shard_indices(self.size, self.num_shards, self.shard_id, shuffle=False, seed=0, epoch=0,
                                 repeats=self.repeats))
        return full if self.window is None else max(0, min(self.window[1], full) - self.window[0])


class _EncodedImages:
    """Random-access (encoded bytes, label) pairs; decoding happens in the C++ map."""

    def __init__(self, samples: list[tuple[str, int]]) -> None:
        self.samples = samples

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        path, label = self.samples[index]
        return np.fromfile(path, dtype=np.uint8), np.array(label, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.samples)


def image_transforms(params: dict[str, Any], training: bool) -> list:
    """The per-image operations of the seeds, for training or evaluation."""
    size = int(params["image_size"])
    if not training:
        return [V.Decode(), V.Resize(round(size * 256 / 224)), V.CenterCrop(size),
                V.Normalize(IMAGENET_MEAN, IMAGENET_STD), V.HWC2CHW()]
    min_scale = float(params.get("crop_min_scale", 0.08))
    if min_scale >= 1.0:  # the whole image: no random crop (RandomResizedCrop would still jitter the aspect ratio)
        ops: list = [V.Decode(), V.Resize(size), V.CenterCrop(size)]
    else:
        ops = [V.Decode(), V.RandomResizedCrop(size, scale=(min_scale, 1.0))]
    if params.get("random_flip", True):
        ops.append(V.RandomHorizontalFlip(0.5))
    if params.get("autoaugment"):
        ops.append(V.AutoAugment(V.AutoAugmentPolicy.IMAGENET))
    jitter = float(params.get("color_jitter") or 0.0)
    if jitter > 0:
        # BAM's 0.4/0.4/0.4/0.1: hue jitter is a quarter of the others.
        ops.append(V.RandomColorAdjust(brightness=jitter, contrast=jitter, saturation=jitter, hue=jitter / 4))
    ops += [V.Normalize(IMAGENET_MEAN, IMAGENET_STD), V.HWC2CHW()]
    return ops


def image_dataset(
    root: str | Path,
    params: dict[str, Any],
    *,
    training: bool,
    rank: int = 0,
    rank_size: int = 1,
    classes: list[str] | None = None,
    window: tuple[int, int] | None = None,
    epoch: int = 0,
) -> DataSpec:
    """An ImageFolder pipeline (ImageNet train/val, RP2K all/train, all/test), batched and sharded."""
    names = classes if classes is not None else layouts.list_classes(root)
    samples = layouts.scan_image_folder(root, names)
    repeats = int(params.get("repeated_augment", 1)) if training else 1
    sampler = ShardSampler(len(samples), rank_size, rank, training, int(params["seed"]), repeats, window, epoch)
    data = ds.GeneratorDataset(_EncodedImages(samples), ["image", "label"], sampler=sampler,
                               python_multiprocessing=False)
    workers = int(params.get("num_parallel_workers", 2))
    data = data.map(image_transforms(params, training), input_columns="image", num_parallel_workers=workers)
    data = data.map(T.TypeCast(ms.int32), input_columns="label")
    spec = _batch(data, len(sampler), params, training)
    spec.sampler = sampler
    return spec


def _batch(data: ds.Dataset, count: int, params: dict[str, Any], training: bool) -> DataSpec:
    batch = int(params["batch_size"]) if training else int(params.get("eval_batch_size") or params["batch_size"])
    if training and count < batch:
        batch = max(count, 1)  # tiny datasets: one smaller batch instead of none
    data = data.batch(batch, drop_remainder=training)
    steps = count // batch if training else -(-count // batch)
    limit = int(params.get("steps_per_epoch") or 0)
    if training and 0 < limit < steps:
        data = data.take(limit)
        steps = limit
    return DataSpec(data, count, [], steps, batch_size=batch)


class _Clips:
    """Random-access clips of a video list: one random clip per video (training) or every window (eval)."""

    def __init__(self, videos: list[layouts.Video], params: dict[str, Any], training: bool) -> None:
        self.videos, self.training = videos, training
        self.length, self.size = int(params.get("clip_length", 16)), int(params["image_size"])
        self.rng = random.Random(int(params["seed"]))
        self.items: list[tuple[int, list[int] | None]] = []
        for v_index, item in enumerate(videos):
            if training:
                self.items.append((v_index, None))
            else:
                self.items += [(v_index, w) for w in video.sliding_windows(item.frames, self.length)]

    def _frame(self, directory: str, index: int) -> np.ndarray:
        with Image.open(Path(directory) / video.frame_name(index)) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = self.size / min(w, h)
            img = img.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))), Image.BILINEAR)
            w, h = img.size
            left, top = (w - self.size) // 2, (h - self.size) // 2
            return np.asarray(img.crop((left, top, left + self.size, top + self.size)), dtype=np.float32)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        v_index, window = self.items[index]
        item = self.videos[v_index]
        frames = window or video.train_clip(item.frames, self.length, self.rng)
        clip = np.stack([self._frame(item.directory, f) for f in frames]) / 255.0
        clip = ((clip - VIDEO_MEAN) / VIDEO_STD).transpose(3, 0, 1, 2).astype(np.float32)  # C, T, H, W
        return clip, np.array(item.label, dtype=np.int32), np.array(v_index, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.items)


def video_dataset(
    root: str | Path, params: dict[str, Any], *, training: bool, rank: int = 0, rank_size: int = 1,
    window: tuple[int, int] | None = None, epoch: int = 0,
) -> DataSpec:
    """A clip pipeline over frame folders and their split json; eval rows carry the video index."""
    split = layouts.find_split_json(root)
    labels, videos = layouts.load_videos(root, split, "training" if training else "validation")
    source = _Clips(videos, params, training)
    sampler = ShardSampler(len(source), rank_size, rank, training, int(params["seed"]), 1, window, epoch)
    data = ds.GeneratorDataset(source, ["image", "label", "video"], sampler=sampler, python_multiprocessing=False)
    if training:
        data = data.project(["image", "label"])
    spec = _batch(data, len(sampler), params, training)
    spec.classes, spec.sampler = labels, sampler
    return spec


def build(
    root: str | Path,
    params: dict[str, Any],
    input_kind: str,
    *,
    training: bool,
    rank: int = 0,
    rank_size: int = 1,
    classes: list[str] | None = None,
    window: tuple[int, int] | None = None,
    epoch: int = 0,
) -> DataSpec:
    """The pipeline for a model's input kind ("image" or "video"). `window` and `epoch` build the rest of one
    epoch for a run resumed mid-epoch: samples [skip, end) of that epoch's order."""
    if input_kind == "video":
        return video_dataset(root, params, training=training, rank=rank, rank_size=rank_size, window=window,
                             epoch=epoch)
    spec = image_dataset(root, params, training=training, rank=rank, rank_size=rank_size, classes=classes,
                         window=window, epoch=epoch)
    spec.classes = classes if classes is not None else layouts.list_classes(root)
    return spec
