"""zoo-data: build datasets in the zoo's layouts.

zoo-data synth --layout imagefolder|rp2k|video --out DIR --classes K --per-class N --size S
zoo-data digits --out DIR [--size 32]
zoo-data ucf101-json --class-ind classInd.txt --train-list trainlist01.txt --test-list testlist01.txt
                     [--frames-dir FRAMES] --out ucf101_01.json
zoo-data frames --videos VIDEOS_DIR --out FRAMES_DIR   (needs opencv-python)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from zoo_workloads.cli.common import guarded, parser
from zoo_workloads.errors import ConfigError, DatasetMissing


def _frames(videos: Path, out: Path) -> int:
    """Extract every <class>/<video>.avi to <out>/<class>/<video>/image_00001.jpg ... with OpenCV."""
    try:
        import cv2  # optional: only this subcommand needs it
    except ImportError:
        raise ConfigError(
            "zoo-data frames needs opencv-python (pip install opencv-python-headless)"
        ) from None
    if not videos.is_dir():
        raise DatasetMissing(f"--videos {videos} does not exist")
    count = 0
    for path in sorted(videos.glob("*/*")):
        if path.suffix.lower() not in (".avi", ".mp4", ".mkv", ".webm"):
            continue
        target = out / path.parent.name / path.stem
        target.mkdir(parents=True, exist_ok=True)
        capture = cv2.VideoCapture(str(path))
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            index += 1
            cv2.imwrite(str(target / f"image_{index:05d}.jpg"), frame)
        capture.release()
        count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of zoo-data."""
    p = parser("zoo-data", "Build datasets in the zoo's layouts.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("synth", help="a tiny synthetic dataset")
    s.add_argument("--layout", required=True, choices=("imagefolder", "rp2k", "video"))
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--classes", type=int, default=4)
    s.add_argument("--per-class", type=int, default=8)
    s.add_argument("--size", type=int, default=32)
    s.add_argument("--seed", type=int, default=0)
    d = sub.add_parser("digits", help="scikit-learn's digits as ImageFolder train/ and val/")
    d.add_argument("--out", required=True, type=Path)
    d.add_argument("--size", type=int, default=32)
    u = sub.add_parser("ucf101-json", help="the split json from UCF101 classInd/trainlist/testlist")
    u.add_argument("--class-ind", required=True, type=Path)
    u.add_argument("--train-list", required=True, type=Path)
    u.add_argument("--test-list", required=True, type=Path)
    u.add_argument("--frames-dir", type=Path, default=None, help="count frames of each video from here")
    u.add_argument("--out", required=True, type=Path)
    f = sub.add_parser("frames", help="extract video frames (needs opencv)")
    f.add_argument("--videos", required=True, type=Path)
    f.add_argument("--out", required=True, type=Path)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    def run() -> int:
        from zoo_workloads.data import layouts, synth

        if args.command == "synth":
            if min(args.classes, args.per_class) < 1 or args.size < 8:
                raise ConfigError("--classes and --per-class must be >= 1 and --size >= 8")
            root = synth.write_synthetic(
                args.layout, args.out, args.classes, args.per_class, args.size, args.seed
            )
            print(f"wrote {args.layout} dataset; --data-dir {root}", flush=True)
        elif args.command == "digits":
            train, val = synth.write_digits(args.out, args.size)
            print(f"wrote digits: {train} train images in {args.out / 'train'}, {val} in {args.out / 'val'}")
        elif args.command == "ucf101-json":
            for path in (args.class_ind, args.train_list, args.test_list):
                if not path.is_file():
                    raise DatasetMissing(f"{path} does not exist")
            counts: dict[str, int] = {}
            if args.frames_dir is not None:
                counts = {v.name: layouts.count_frames(v) for v in args.frames_dir.glob("*/*") if v.is_dir()}
            split = layouts.ucf101_split(
                args.class_ind.read_text(), args.train_list.read_text(), args.test_list.read_text(), counts
            )
            args.out.write_text(json.dumps(split), encoding="utf-8")
            print(f"wrote {args.out}: {len(split['labels'])} classes, {len(split['database'])} videos")
        else:
            print(f"extracted {_frames(args.videos, args.out)} videos into {args.out}", flush=True)
        return 0

    return guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
