"""Which frames make a clip (MODELS.md, resnet3d): pure index arithmetic, unit-tested.

Frames are numbered 1..n as in image_00001.jpg. Training takes `length` consecutive frames at a random start,
looping the video when it is shorter; evaluation covers the whole video with non-overlapping windows.
"""

from __future__ import annotations

import random


def loop_pad(indices: list[int], length: int) -> list[int]:
    """Repeat indices cyclically until there are `length` of them (short videos)."""
    if not indices:
        raise ValueError("cannot pad an empty frame list")
    out = list(indices)
    i = 0
    while len(out) < length:
        out.append(indices[i % len(indices)])
        i += 1
    return out[:length]


def train_clip(n_frames: int, length: int, rng: random.Random) -> list[int]:
    """1-based frame numbers of a training clip: `length` consecutive frames from a random start."""
    if n_frames < 1:
        raise ValueError("a video needs at least one frame")
    start = rng.randint(1, max(1, n_frames - length + 1))
    return loop_pad(list(range(start, min(start + length, n_frames + 1))), length)


def sliding_windows(n_frames: int, length: int) -> list[list[int]]:
    """Non-overlapping windows covering the video; the last (partial) one is loop-padded from its own frames."""
    if n_frames < 1:
        raise ValueError("a video needs at least one frame")
    return [
        loop_pad(list(range(s, min(s + length, n_frames + 1))), length)
        for s in range(1, n_frames + 1, length)
    ]


def frame_name(index: int) -> str:
    """File name of a 1-based frame index: image_00001.jpg."""
    return f"image_{index:05d}.jpg"
