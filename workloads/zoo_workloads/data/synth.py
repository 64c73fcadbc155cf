"""Tiny datasets written to disk: synthetic images/videos and scikit-learn's digits, in the zoo's layouts.

Synthetic classes differ by a base colour and a stripe orientation plus noise, so a model can learn them;
digits are the 1797 8x8 scans that ship inside scikit-learn (no download), upscaled to RGB.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

LAYOUTS = ("imagefolder", "rp2k", "video")


def _class_image(label: int, classes: int, size: int, rng: np.random.Generator) -> np.ndarray:
    hue = np.array([(label * 97) % 256, (label * 53 + 80) % 256, (label * 31 + 160) % 256], dtype=np.float32)
    grid = np.add.outer(np.arange(size) * (label % 2), np.arange(size) * (1 + label % 3))
    stripes = ((grid // max(2, size // 8) + label) % 2)[..., None] * 60.0
    image = hue[None, None, :] * 0.7 + stripes + rng.normal(0, 20, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_image_classes(out: Path, classes: int, per_class: int, size: int, seed: int) -> int:
    """Write <out>/class_XXX/img_YYYY.png; returns the number of images."""
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = out / f"class_{label:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(_class_image(label, classes, size, rng)).save(folder / f"img_{i:04d}.png")
    return classes * per_class


def write_video_classes(out: Path, classes: int, per_class: int, size: int, frames: int, seed: int) -> dict:
    """Write frame folders <out>/<class>/<video>/image_00001.jpg ... and return the split json (every 4th
    video of a class is validation)."""
    rng = np.random.default_rng(seed)
    labels = [f"action_{label:02d}" for label in range(classes)]
    database = {}
    for label, name in enumerate(labels):
        for v in range(per_class):
            key = f"v_{name}_g{v:02d}_c01"
            folder = out / name / key
            folder.mkdir(parents=True, exist_ok=True)
            n = frames + (v % 3) * 4  # unequal lengths exercise loop padding and partial windows
            base = _class_image(label, classes, size, rng).astype(np.float32)
            for f in range(1, n + 1):
                shifted = np.roll(base, shift=f * (label + 1), axis=1)
                Image.fromarray(shifted.astype(np.uint8)).save(folder / f"image_{f:05d}.jpg", quality=90)
            subset = "validation" if v % 4 == 3 else "training"
            database[key] = {"subset": subset, "annotations": {"label": name, "segment": [1, n + 1]}}
    return {"labels": labels, "database": database}


def write_synthetic(
    layout: str, out: str | Path, classes: int, per_class: int, size: int, seed: int = 0
) -> Path:
    """Write a tiny dataset in one of LAYOUTS; returns the directory to pass as --data-dir.

    imagefolder: <out>/train, <out>/val. rp2k: <out>/all/train, <out>/all/test (returns <out>).
    video: <out>/frames/<class>/<video>/..., <out>/frames/split.json (returns <out>/frames).
    """
    root = Path(out)
    if layout == "imagefolder":
        write_image_classes(root / "train", classes, per_class, size, seed)
        write_image_classes(root / "val", classes, max(1, per_class // 2), size, seed + 1)
        return root / "train"
    if layout == "rp2k":
        write_image_classes(root / "all" / "train", classes, per_class, size, seed)
        write_image_classes(root / "all" / "test", classes, max(1, per_class // 2), size, seed + 1)
        return root
    if layout == "video":
        frames_dir = root / "frames"
        split = write_video_classes(frames_dir, classes, per_class, size, frames=20, seed=seed)
        (frames_dir / "split.json").write_text(json.dumps(split, indent=1), encoding="utf-8")
        return frames_dir
    raise ValueError(f"layout: {layout!r} is not one of {', '.join(LAYOUTS)}")


def write_digits(out: str | Path, size: int = 32) -> tuple[int, int]:
    """scikit-learn's digits as <out>/train/<digit>/ and <out>/val/<digit>/ PNGs; every 5th image is val.

    Returns (train count, val count): (1437, 360).
    """
    from sklearn.datasets import load_digits  # heavy import, only here

    digits = load_digits()
    root = Path(out)
    counts = {"train": 0, "val": 0}
    for i, (image, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        split = "val" if i % 5 == 0 else "train"
        folder = root / split / str(int(target))
        folder.mkdir(parents=True, exist_ok=True)
        gray = Image.fromarray((image * (255.0 / 16.0)).astype(np.uint8)).resize((size, size), Image.BILINEAR)
        gray.convert("RGB").save(folder / f"digit_{i:04d}.png")
        counts[split] += 1
    return counts["train"], counts["val"]
