"""Keyed augmentation (data/augment.py): the draws depend on (seed, epoch, slot) only, so a resumed epoch, another
worker count and each rank's shard see exactly the crops and flips of an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo_workloads import config
from zoo_workloads.data import augment, pipeline, synth


def test_keys_round_trip_and_refuse_out_of_range():
    key = augment.pack_key(7, 5, 3, slots=12, size=10)
    assert augment.unpack_key(key, 12, 10) == (7, 5, 3)
    with pytest.raises(ValueError, match="out of range"):
        augment.pack_key(0, 12, 0, slots=12, size=10)


def test_same_key_same_augmentation_other_key_other():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8))
    aug = augment.Augment(24, 0.08, True, 0.4)
    a = aug(img, augment.sample_rng(1, 2, 3))
    assert a.shape == (24, 24, 3) and a.dtype == np.uint8
    assert np.array_equal(a, aug(img, augment.sample_rng(1, 2, 3)))
    assert not np.array_equal(a, aug(img, augment.sample_rng(1, 3, 3)))  # next epoch
    assert not np.array_equal(a, aug(img, augment.sample_rng(2, 2, 3)))  # other job seed


def test_crop_box_stays_inside_and_covers_the_scale():
    aug = augment.Augment(16, 0.5)
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, w, h = aug.crop_box(60, 40, rng)
        assert left >= 0 and left + w <= 60 and top >= 0 and top + h <= 40
        assert w * h >= 0.5 * 60 * 40 * 0.9  # rounding of w, h


def _epoch(root: Path, params: dict, epoch: int, window=None, rank=0, workers=1) -> list[np.ndarray]:
    spec = pipeline.build(
        root,
        {**params, "num_parallel_workers": workers},
        "image",
        training=True,
        rank=rank,
        rank_size=2,
        window=window,
        epoch=epoch,
    )
    return [b[0] for b in spec.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)]


def test_resumed_window_and_worker_count_draw_the_same_batches(tmp_path: Path):
    root = synth.write_synthetic("imagefolder", tmp_path / "data", classes=3, per_class=8, size=32)
    params = config.resolve("resnet50_bam", None, ["image_size=24", "batch_size=4", "color_jitter=0.4"])
    full = _epoch(root, params, 1, workers=1)
    assert len(full) == 3
    rest = _epoch(root, params, 1, window=(4, 12), workers=2)  # resumed after one step, 2 workers
    assert all(np.array_equal(a, b) for a, b in zip(full[1:], rest, strict=True))
    assert not np.array_equal(full[0], _epoch(root, params, 2)[0])  # each epoch draws anew
    other_rank = _epoch(root, params, 1, rank=1)
    assert not np.array_equal(full[0], other_rank[0])
