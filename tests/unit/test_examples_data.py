"""Every example runs against data laid out exactly as manifests/examples/README.md says (issue 13).

The README's layout table is parsed, each volume is built from it with tiny synthetic data, every example is
rendered by the operator (`zoo-operator render`), and the pod's own paths (--data-dir, --eval-dir, a pretrained
checkpoint) are run through the workloads' data-layout checks, the ones that fail a pod with DatasetMissing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from zoo_operator import conditions as c
from zoo_operator import dryrun
from zoo_operator.settings import Settings
from zoo_workloads.data import layouts, synth
from zoo_workloads.models import model_spec

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests" / "examples"
README = (EXAMPLES / "README.md").read_text()
IMAGE = re.compile(r"^(?P<root>.*)<class>/<image>\.\w+$")
FRAMES = re.compile(r"^(?P<root>.*)<class>/<video>/image_00001\.jpg$")


def readme_layouts() -> dict[str, list[str]]:
    """PVC name -> the backticked paths of its row in the README's layout table."""
    rows = re.findall(r"^\| `([-a-z0-9]+)` \| (.+) \|$", README, flags=re.MULTILINE)
    return {name: re.findall(r"`([^`]+)`", cells) for name, cells in rows}


def build_volume(root: Path, paths: list[str]) -> None:
    """Lay out one volume as the README's paths say, with tiny synthetic content."""
    split = None
    for path in paths:
        if match := IMAGE.match(path):
            synth.write_image_classes(root / match["root"], classes=3, per_class=2, size=16, seed=0)
        elif match := FRAMES.match(path):
            split = synth.write_video_classes(
                root / match["root"], classes=3, per_class=4, size=16, frames=4, seed=0
            )
    for path in paths:
        if "<" in path:
            continue
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.endswith(".json"):
            assert split is not None, f"{path}: a split json needs frames listed before it"
            target.write_text(json.dumps(split))
        else:
            target.write_bytes(b"placeholder")


def test_readme_describes_every_dataset_volume_of_the_examples():
    tables = readme_layouts()
    claims = {
        yaml.safe_load(p.read_text())["spec"]
        .get("dataset", {})
        .get("volume", {})
        .get("persistentVolumeClaim", {})
        .get("claimName")
        for p in EXAMPLES.glob("*.yaml")
    } - {None}
    assert claims and claims <= set(tables), f"README layout table misses {sorted(claims - set(tables))}"
    # the layout that once failed with DatasetMissing: frames under a jpg/ folder apart from the split json
    assert "ucf101/jpg/" not in README


def _flag(command: list[str], flag: str) -> str | None:
    return command[command.index(flag) + 1] if flag in command else None


def _pod_path(path: str, volumes: dict[str, Path]) -> Path:
    for mount, root in volumes.items():
        if path == mount or path.startswith(mount + "/"):
            return root / path[len(mount) + 1 :]
    raise AssertionError(f"{path} is on no volume the test built")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_paths_pass_the_workload_layout_checks(path: Path, tmp_path: Path):
    job = yaml.safe_load(path.read_text())
    spec = job["spec"]
    if "dataset" not in spec:  # export: reads the named job's run directory only
        assert spec["task"] == "export"
        return
    volume = spec["dataset"]["volume"]
    root = tmp_path / "data"
    if "persistentVolumeClaim" in volume:
        build_volume(root, readme_layouts()[volume["persistentVolumeClaim"]["claimName"]])
    else:  # cpu-tiny's hostPath, as `zoo-data digits` writes it (train/<digit>/*.png, val/<digit>/*.png)
        assert "zoo-data digits" in README and volume["hostPath"]["path"] == "/tmp/zoo-data/digits"
        for split in ("train", "val"):
            synth.write_image_classes(root / split, classes=3, per_class=2, size=16, seed=0)
    objs = dryrun.objects(path.read_text(), Settings())
    (pod,) = [o for o in objs if o["kind"] == "Pod" and o["metadata"]["labels"].get(c.LABEL_RANK) == "0"]
    command = pod["spec"]["containers"][0]["command"]
    volumes = {c.DATA_DIR: root}
    kind = model_spec(spec["model"]).input_kind
    train = _flag(command, "--data-dir")
    evaluate = _flag(command, "--eval-dir") or (train if spec.get("task") == "evaluate" else None)
    if kind == "image":
        classes = layouts.list_classes(_pod_path(train, volumes))
        assert layouts.scan_image_folder(_pod_path(train, volumes), classes)
        if evaluate:
            assert layouts.scan_image_folder(_pod_path(evaluate, volumes), classes)
    else:
        for directory, subset in ((train, "training"), (evaluate, "validation")):
            if directory:
                folder = _pod_path(directory, volumes)
                labels, videos = layouts.load_videos(folder, layouts.find_split_json(folder), subset)
                assert len(labels) == 3 and videos
    for item in command:
        if item.startswith("pretrained=/zoo/data/"):
            assert _pod_path(item.split("=", 1)[1], volumes).is_file(), item
