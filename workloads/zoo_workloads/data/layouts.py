"""Dataset layouts on disk: scanning and checking them, without MindSpore.

- ImageFolder (ImageNet2012 train/ and val/, RP2K all/train and all/test): <root>/<class>/<image>.
- Video frames (UCF101, HMDB51): <root>/<class>/<video>/image_00001.jpg ... plus a split json
  {"labels": [...], "database": {"<video>": {"subset": "training"|"validation",
   "annotations": {"label": "<class>", "segment": [1, n_frames + 1]}}}}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from zoo_workloads.errors import DatasetMissing

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".JPEG", ".JPG", ".PNG")
SUBSETS = ("training", "validation")


def rp2k_dirs(root: str | Path) -> tuple[Path, Path]:
    """RP2K's (train, test) folders: <root>/all/train and <root>/all/test."""
    base = Path(root) / "all"
    return base / "train", base / "test"


def list_classes(root: str | Path) -> list[str]:
    """Sorted class folder names of an ImageFolder tree; DatasetMissing when there are none."""
    path = Path(root)
    if not path.is_dir():
        raise DatasetMissing(f"dataset directory {path} does not exist")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetMissing(f"dataset directory {path} has no class subfolders")
    return classes


def scan_image_folder(root: str | Path, classes: list[str] | None = None) -> list[tuple[str, int]]:
    """(path, label) of every image, labels indexed by `classes` (default: the folder's own sorted classes).

    Passing the training classes to the eval folder keeps labels aligned when the eval set lacks a class.
    """
    path = Path(root)
    names = classes if classes is not None else list_classes(path)
    if not path.is_dir():
        raise DatasetMissing(f"dataset directory {path} does not exist")
    index = {name: i for i, name in enumerate(names)}
    samples: list[tuple[str, int]] = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        if folder.name not in index:
            raise DatasetMissing(f"{folder}: class {folder.name!r} is not among the training classes")
        for item in sorted(folder.iterdir()):
            if item.suffix in IMAGE_SUFFIXES:
                samples.append((str(item), index[folder.name]))
    if not samples:
        raise DatasetMissing(f"dataset directory {path} holds no images ({', '.join(IMAGE_SUFFIXES[:5])})")
    return samples


@dataclass(frozen=True)
class Video:
    """One annotated video: its frame folder, label index and number of frames."""

    name: str
    label: int
    frames: int
    directory: str


def parse_split_json(text: str, subset: str) -> tuple[list[str], list[tuple[str, str, int]]]:
    """Parse a split annotation: (labels, [(video key, class name, n_frames)]) of one subset.

    n_frames comes from the segment [1, n_frames + 1]. Raises ValueError naming the bad field.
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset: {subset!r} is not one of {', '.join(SUBSETS)}")
    data = json.loads(text)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("labels"), list)
        or not isinstance(data.get("database"), dict)
    ):
        raise ValueError("split json: expected an object with a 'labels' list and a 'database' object")  # noqa: TRY004
    entries = []
    for key, item in sorted(data["database"].items()):
        if item.get("subset") != subset:
            continue
        annotations = item.get("annotations") or {}
        label = annotations.get("label")
        segment = annotations.get("segment") or [1, 1]
        if label not in data["labels"]:
            raise ValueError(f"split json: video {key!r} has label {label!r} not in 'labels'")
        entries.append((key, label, max(int(segment[1]) - int(segment[0]), 0)))
    return list(data["labels"]), entries


def count_frames(directory: Path) -> int:
    """Number of image_XXXXX.jpg frames in a video folder."""
    return sum(1 for p in directory.glob("image_*.jpg"))


def load_videos(
    frames_root: str | Path, split_json: str | Path, subset: str
) -> tuple[list[str], list[Video]]:
    """Videos of one subset whose frame folder exists, with frame counts read from disk when the json has none.

    The frame folder of key `v_X_g01_c01` with label `X` is <frames_root>/X/v_X_g01_c01.
    """
    root, split = Path(frames_root), Path(split_json)
    if not root.is_dir():
        raise DatasetMissing(f"video frames directory {root} does not exist")
    if not split.is_file():
        raise DatasetMissing(f"split annotation file {split} does not exist")
    try:
        labels, entries = parse_split_json(split.read_text(encoding="utf-8"), subset)
    except ValueError as err:
        raise DatasetMissing(f"{split}: {err}") from err
    index = {name: i for i, name in enumerate(labels)}
    videos = []
    for key, label, frames in entries:
        directory = root / label / key
        if not directory.is_dir():
            continue
        n = count_frames(directory) if frames <= 0 else frames
        if n > 0:
            videos.append(Video(key, index[label], n, str(directory)))
    if not videos:
        raise DatasetMissing(f"no {subset} videos of {split} have frames under {root}")
    return labels, videos


def find_split_json(data_dir: str | Path) -> Path:
    """The split json of a video dataset dir: <dir>/*.json (e.g. ucf101_01.json); the only or the first one."""
    candidates = sorted(Path(data_dir).glob("*.json"))
    if not candidates:
        raise DatasetMissing(f"no split annotation json (*.json) in {data_dir}")
    return candidates[0]


def ucf101_split(class_ind: str, train_list: str, test_list: str, frame_counts: dict[str, int]) -> dict:
    """Build the split json from UCF101's classInd.txt, trainlist0N.txt and testlist0N.txt texts.

    classInd lines are `1 ApplyEyeMakeup`; list lines are `ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi [1]`.
    frame_counts maps video key -> number of extracted frames (0 when unknown).
    """
    labels = []
    for line in class_ind.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            labels.append(parts[1])
    database: dict[str, dict] = {}
    for text, subset in ((train_list, "training"), (test_list, "validation")):
        for line in text.splitlines():
            parts = line.split()
            if not parts:
                continue
            label, _, filename = parts[0].partition("/")
            key = Path(filename).stem
            if label not in labels:
                raise ValueError(f"video {parts[0]!r}: class {label!r} is not in classInd")
            n = frame_counts.get(key, 0)
            database[key] = {"subset": subset, "annotations": {"label": label, "segment": [1, n + 1]}}
    return {"labels": labels, "database": database}
