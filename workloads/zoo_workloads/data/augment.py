"""Training augmentation drawn from a random stream keyed by (job seed, epoch, slot): resume-exact by construction.

MindSpore's random vision ops (RandomResizedCrop, RandomHorizontalFlip, RandomColorAdjust) draw from one stream
owned by the pipeline: a run resumed in epoch e restarts that stream at the seed, so it draws other crops than an
uninterrupted run did, and with num_parallel_workers > 1 the workers take draws in whatever order they run. Here
every sample draws from its own generator, seeded by (seed, epoch, slot) where slot is the sample's position in
the epoch's global order (rank r of R holds slots r, r + R, ...). The same sample at the same place of the same
epoch gets the same crop, flip and jitter whatever the worker count, the rank count's interleaving or a restart;
the copies of repeated augmentation sit at different slots and so stay independent.

The draws follow the definitions of torchvision's RandomResizedCrop (area fraction uniform in `scale`, log aspect
ratio uniform in log(3/4)..log(4/3), 10 tries, then a centre crop with the ratio clamped) and ColorJitter
(brightness/contrast/saturation factors uniform in [1 - j, 1 + j], hue shift uniform in [-h, h], applied in a
random order); https://pytorch.org/vision/stable/transforms.html. AutoAugment stays MindSpore's C++ op: it is the
one augmentation that is NOT resume-exact (docs/workloads.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance

# Sampler keys pack (epoch, slot, sample) into one int: key = (epoch * slots + slot) * size + sample.


def pack_key(epoch: int, slot: int, sample: int, slots: int, size: int) -> int:
    """One sampler index carrying the epoch and the sample's slot along with the sample itself."""
    if not (0 <= slot < slots and 0 <= sample < size):
        raise ValueError(f"slot {slot} / sample {sample} out of range ({slots} slots, {size} samples)")
    return (epoch * slots + slot) * size + sample


def unpack_key(key: int, slots: int, size: int) -> tuple[int, int, int]:
    """(epoch, slot, sample) of a key made by pack_key."""
    rest, sample = divmod(int(key), size)
    epoch, slot = divmod(rest, slots)
    return epoch, slot, sample


def sample_rng(seed: int, epoch: int, slot: int) -> np.random.Generator:
    """The generator of one sample's augmentation draws."""
    return np.random.default_rng([int(seed), int(epoch), int(slot)])


@dataclass(frozen=True)
class Augment:
    """The random training augmentation of one image: random resized crop, horizontal flip, colour jitter."""

    size: int
    min_scale: float = 0.08
    flip: bool = True
    jitter: float = 0.0  # brightness/contrast/saturation; hue gets a quarter (BAM's 0.4/0.4/0.4/0.1)

    def crop_box(self, width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(left, top, w, h) of the random resized crop (the whole image, centre-cropped, when min_scale >= 1)."""
        if self.min_scale >= 1.0:
            side = min(width, height)
            return (width - side) // 2, (height - side) // 2, side, side
        area = width * height
        log_lo, log_hi = math.log(3 / 4), math.log(4 / 3)
        for _ in range(10):
            target = area * rng.uniform(self.min_scale, 1.0)
            ratio = math.exp(rng.uniform(log_lo, log_hi))
            w = round(math.sqrt(target * ratio))
            h = round(math.sqrt(target / ratio))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return left, top, w, h
        ratio = width / height  # fallback: centre crop with the ratio clamped to [3/4, 4/3]
        if ratio < 3 / 4:
            w, h = width, round(width / (3 / 4))
        elif ratio > 4 / 3:
            w, h = round(height * (4 / 3)), height
        else:
            w, h = width, height
        return (width - w) // 2, (height - h) // 2, w, h

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> np.ndarray:
        """An RGB PIL image -> (size, size, 3) uint8 array."""
        left, top, w, h = self.crop_box(img.width, img.height, rng)
        if self.min_scale >= 1.0:  # as the C++ path did: resize the short side, then the centre crop
            out = img.resize(_short_side(img.width, img.height, self.size), Image.BILINEAR)
            left, top = (out.width - self.size) // 2, (out.height - self.size) // 2
            out = out.crop((left, top, left + self.size, top + self.size))
        else:
            out = img.resize((self.size, self.size), Image.BILINEAR, box=(left, top, left + w, top + h))
        # Always draw the flip, so the jitter's draws do not depend on whether flipping is on.
        if rng.uniform() < 0.5 and self.flip:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        if self.jitter > 0:
            out = color_jitter(out, self.jitter, rng)
        return np.asarray(out, dtype=np.uint8)


def _short_side(width: int, height: int, size: int) -> tuple[int, int]:
    if width <= height:
        return size, max(size, round(height * size / width))
    return max(size, round(width * size / height)), size


def color_jitter(img: Image.Image, jitter: float, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast, saturation by factors in [1 - j, 1 + j] and hue by up to j / 4 of a turn, in a
    random order."""
    factors = [float(rng.uniform(max(0.0, 1 - jitter), 1 + jitter)) for _ in range(3)]
    hue = float(rng.uniform(-jitter / 4, jitter / 4))
    for op in rng.permutation(4):
        if op == 0:
            img = ImageEnhance.Brightness(img).enhance(factors[0])
        elif op == 1:
            img = ImageEnhance.Contrast(img).enhance(factors[1])
        elif op == 2:
            img = ImageEnhance.Color(img).enhance(factors[2])
        else:
            img = shift_hue(img, hue)
    return img


def shift_hue(img: Image.Image, shift: float) -> Image.Image:
    """Rotate the hue by `shift` turns (in [-0.5, 0.5])."""
    if shift == 0:
        return img
    h, s, v = img.convert("HSV").split()
    hue = (np.asarray(h, dtype=np.int16) + round(shift * 255)) % 256
    return Image.merge("HSV", (Image.fromarray(hue.astype(np.uint8), "L"), s, v)).convert("RGB")
