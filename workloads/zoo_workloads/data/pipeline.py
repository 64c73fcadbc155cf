"""MindSpore dataset pipelines for training and evaluation (the only data module that imports MindSpore).

Images: Decode + RandomResizedCrop + flip [+ AutoAugment (ImageNet policy) | + colour jitter] + Normalize for
training; Resize(size * 256 / 224) + CenterCrop for evaluation. Videos: 16-frame clips resized and centre-cropped
to image_size, normalised with the UCF101 statistics of the seed. Samples are sharded by rank.

Training's random crop, flip and colour jitter, and a clip's start frame, are drawn per sample from a stream keyed
by (seed, epoch, slot) (data/augment.py): the sampler hands each sample its key, so a resumed epoch, any worker
count and each rank's shard draw exactly what an uninterrupted run draws. AutoAugment alone is MindSpore's C++ op.
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

from zoo_workloads.data import augment, layouts, video
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
    """Per-epoch shuffled, sharded (and optionally repeated) indices; see sampling.shard_indices.

    keyed: yield augment.pack_key(epoch, slot, sample) instead of the bare sample index, slot being the sample's
    position in the epoch's order over all ranks (position * num_shards + shard_id): the source unpacks it and
    seeds that sample's augmentation with it."""

    def __init__(
        self,
        size: int,
        num_shards: int,
        shard_id: int,
        shuffle: bool,
        seed: int,
        repeats: int,
        window: tuple[int, int] | None = None,
        epoch: int = 0,
        keyed: bool = False,
    ) -> None:
        self.size, self.num_shards, self.shard_id = size, num_shards, shard_id
        self.shuffle, self.seed, self.repeats = shuffle, seed, repeats
        self.epoch = epoch
        self.keyed = keyed
        # Samples [skip, end) of each epoch's order only: the rest of an epoch that a resumed run had begun.
        self.window = window
        super().__init__()  # reads len(self), so the fields come first

    def __iter__(self):
        order = shard_indices(
            self.size,
            self.num_shards,
            self.shard_id,
            shuffle=self.shuffle,
            seed=self.seed,
            epoch=self.epoch,
            repeats=self.repeats,
        )
        epoch, self.epoch = self.epoch, self.epoch + 1
        start, end = self.window if self.window is not None else (0, len(order))
        if not self.keyed:
            return iter(order[start:end])
        slots = len(order) * self.num_shards
        return iter(
            [
                augment.pack_key(epoch, pos * self.num_shards + self.shard_id, order[pos], slots, self.size)
                for pos in range(start, min(end, len(order)))
            ]
        )

    def slots(self) -> int:
        """Slots of one epoch over all ranks (the key's modulus, see augment.pack_key)."""
        full = shard_indices(
            self.size, self.num_shards, self.shard_id, shuffle=False, seed=0, epoch=0, repeats=self.repeats
        )
        return len(full) * self.num_shards

    def __len__(self) -> int:
        full = len(
            shard_indices(
                self.size,
                self.num_shards,
                self.shard_id,
                shuffle=False,
                seed=0,
                epoch=0,
                repeats=self.repeats,
            )
        )
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


class _AugmentedImages:
    """Training source: (augmented HWC uint8 image, label) for a sampler key; the crop, flip and jitter are drawn
    from augment.sample_rng(seed, epoch, slot) of the key (module doc)."""

    def __init__(self, samples: list[tuple[str, int]], aug: augment.Augment, seed: int, slots: int) -> None:
        self.samples, self.aug, self.seed, self.slots = samples, aug, seed, slots

    def __getitem__(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, slot, index = augment.unpack_key(key, self.slots, len(self.samples))
        path, label = self.samples[index]
        with Image.open(path) as img:
            image = self.aug(img.convert("RGB"), augment.sample_rng(self.seed, epoch, slot))
        return image, np.array(label, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.samples)


def image_transforms(params: dict[str, Any], training: bool) -> list:
    """The per-image C++ operations: evaluation's whole chain from the encoded bytes; training's after the keyed
    decode + crop + flip + jitter of the source (_AugmentedImages)."""
    size = int(params["image_size"])
    if not training:
        return [
            V.Decode(),
            V.Resize(round(size * 256 / 224)),
            V.CenterCrop(size),
            V.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            V.HWC2CHW(),
        ]
    return keyed_image_transforms(params)


def keyed_augment(params: dict[str, Any]) -> augment.Augment:
    """The per-sample keyed crop/flip/jitter of training (data/augment.py)."""
    return augment.Augment(
        int(params["image_size"]),
        float(params.get("crop_min_scale", 0.08)),
        bool(params.get("random_flip", True)),
        float(params.get("color_jitter") or 0.0),
    )


def keyed_image_transforms(params: dict[str, Any]) -> list:
    """The C++ ops after the keyed augmentation: AutoAugment if on (not resume-exact), Normalize, HWC2CHW."""
    ops: list = [V.AutoAugment(V.AutoAugmentPolicy.IMAGENET)] if params.get("autoaugment") else []
    return [*ops, V.Normalize(IMAGENET_MEAN, IMAGENET_STD), V.HWC2CHW()]


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
    seed = int(params["seed"])
    sampler = ShardSampler(
        len(samples), rank_size, rank, training, seed, repeats, window, epoch, keyed=training
    )
    workers = int(params.get("num_parallel_workers", 2))
    if training:
        source: Any = _AugmentedImages(samples, keyed_augment(params), seed, sampler.slots())
        transforms = image_transforms(params, training)
        # AutoAugment draws from the pipeline's C++ stream: its draws follow the worker order unless there is one.
        if params.get("autoaugment"):
            workers = 1
    else:
        source, transforms = _EncodedImages(samples), image_transforms(params, training)
    # Training decodes and augments in the source (Python threads; PIL releases the GIL while decoding/resizing):
    # the same worker count there. Output order follows the sampler whatever the count.
    data = ds.GeneratorDataset(
        source,
        ["image", "label"],
        sampler=sampler,
        python_multiprocessing=False,
        num_parallel_workers=workers if training else 1,
    )
    data = data.map(transforms, input_columns="image", num_parallel_workers=workers)
    data = data.map(T.TypeCast(ms.int32), input_columns="label")
    spec = _batch(data, len(sampler), params, training)
    spec.sampler = sampler
    return spec


def _batch(data: ds.Dataset, count: int, params: dict[str, Any], training: bool) -> DataSpec:
    batch = (
        int(params["batch_size"]) if training else int(params.get("eval_batch_size") or params["batch_size"])
    )
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
        self.seed = int(params["seed"])
        self.slots = 1  # set by video_dataset to the sampler's slots (training keys, see augment.pack_key)
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
            img = img.resize(
                (max(self.size, round(w * scale)), max(self.size, round(h * scale))), Image.BILINEAR
            )
            w, h = img.size
            left, top = (w - self.size) // 2, (h - self.size) // 2
            return np.asarray(img.crop((left, top, left + self.size, top + self.size)), dtype=np.float32)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = None
        if self.training:  # a sampler key: the clip's start is drawn from (seed, epoch, slot), resume-exact
            epoch, slot, index = augment.unpack_key(index, self.slots, len(self.items))
            rng = random.Random(f"{self.seed}:{epoch}:{slot}")
        v_index, window = self.items[index]
        item = self.videos[v_index]
        frames = window or video.train_clip(item.frames, self.length, rng or random.Random(self.seed))
        clip = np.stack([self._frame(item.directory, f) for f in frames]) / 255.0
        clip = ((clip - VIDEO_MEAN) / VIDEO_STD).transpose(3, 0, 1, 2).astype(np.float32)  # C, T, H, W
        return clip, np.array(item.label, dtype=np.int32), np.array(v_index, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.items)


def video_dataset(
    root: str | Path,
    params: dict[str, Any],
    *,
    training: bool,
    rank: int = 0,
    rank_size: int = 1,
    window: tuple[int, int] | None = None,
    epoch: int = 0,
) -> DataSpec:
    """A clip pipeline over frame folders and their split json; eval rows carry the video index."""
    split = layouts.find_split_json(root)
    labels, videos = layouts.load_videos(root, split, "training" if training else "validation")
    source = _Clips(videos, params, training)
    sampler = ShardSampler(
        len(source), rank_size, rank, training, int(params["seed"]), 1, window, epoch, keyed=training
    )
    source.slots = sampler.slots()
    data = ds.GeneratorDataset(
        source, ["image", "label", "video"], sampler=sampler, python_multiprocessing=False
    )
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
        return video_dataset(
            root, params, training=training, rank=rank, rank_size=rank_size, window=window, epoch=epoch
        )
    spec = image_dataset(
        root,
        params,
        training=training,
        rank=rank,
        rank_size=rank_size,
        classes=classes,
        window=window,
        epoch=epoch,
    )
    spec.classes = classes if classes is not None else layouts.list_classes(root)
    return spec
