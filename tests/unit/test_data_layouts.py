"""Dataset layouts: synth and digits trees, the UCF101 split json, clip sampling, sliding windows, sharding."""

import json
import random
from collections import Counter

import pytest

from zoo_workloads.data import layouts, sampling, synth, video
from zoo_workloads.errors import DatasetMissing


def test_synth_imagefolder_tree(tmp_path):
    root = synth.write_synthetic("imagefolder", tmp_path, classes=3, per_class=4, size=16)
    assert root == tmp_path / "train"
    assert layouts.list_classes(tmp_path / "train") == ["class_000", "class_001", "class_002"]
    assert len(layouts.scan_image_folder(tmp_path / "train")) == 12
    assert len(layouts.scan_image_folder(tmp_path / "val")) == 6


def test_synth_rp2k_tree(tmp_path):
    synth.write_synthetic("rp2k", tmp_path, classes=2, per_class=2, size=16)
    train, test = layouts.rp2k_dirs(tmp_path)
    assert train == tmp_path / "all" / "train" and train.is_dir() and test.is_dir()
    assert Counter(label for _, label in layouts.scan_image_folder(train)) == {0: 2, 1: 2}


def test_synth_video_tree_and_split(tmp_path):
    frames = synth.write_synthetic("video", tmp_path, classes=2, per_class=4, size=16)
    split = layouts.find_split_json(frames)
    labels, train = layouts.load_videos(frames, split, "training")
    _, val = layouts.load_videos(frames, split, "validation")
    assert labels == ["action_00", "action_01"]
    assert (len(train), len(val)) == (6, 2)
    first = train[0]
    assert first.frames == layouts.count_frames(tmp_path / "frames" / labels[first.label] / first.name)


def test_digits_layout(tmp_path):
    assert synth.write_digits(tmp_path, size=16) == (1437, 360)
    assert layouts.list_classes(tmp_path / "train") == [str(d) for d in range(10)]
    val = layouts.scan_image_folder(tmp_path / "val")
    assert len(val) == 360 and {label for _, label in val} == set(range(10))
    # deterministic: image 0 of scikit-learn's digits (a zero) is the first val image
    assert val[0][0].endswith("0/digit_0000.png")


def test_eval_labels_follow_training_classes(tmp_path):
    for name in ("b", "c"):
        (tmp_path / "val" / name).mkdir(parents=True)
        (tmp_path / "val" / name / "x.png").write_bytes(b"")
    samples = layouts.scan_image_folder(tmp_path / "val", ["a", "b", "c"])
    assert [label for _, label in samples] == [1, 2]
    with pytest.raises(DatasetMissing, match="not among the training classes"):
        layouts.scan_image_folder(tmp_path / "val", ["a", "b"])


def test_missing_and_empty_datasets(tmp_path):
    with pytest.raises(DatasetMissing, match="does not exist"):
        layouts.list_classes(tmp_path / "nope")
    with pytest.raises(DatasetMissing, match="no class subfolders"):
        layouts.list_classes(tmp_path)
    (tmp_path / "cls").mkdir()
    with pytest.raises(DatasetMissing, match="no images"):
        layouts.scan_image_folder(tmp_path)
    with pytest.raises(DatasetMissing, match="json"):
        layouts.find_split_json(tmp_path)


CLASS_IND = "1 ApplyEyeMakeup\n2 Archery\n"
TRAIN = "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c02.avi 2\n"
TEST = "Archery/v_Archery_g01_c01.avi\n"


def test_ucf101_split_json_round_trip():
    split = layouts.ucf101_split(CLASS_IND, TRAIN, TEST, {"v_Archery_g08_c02": 120})
    assert split["labels"] == ["ApplyEyeMakeup", "Archery"]
    assert split["database"]["v_Archery_g08_c02"] == {
        "subset": "training",
        "annotations": {"label": "Archery", "segment": [1, 121]},
    }
    _, val = layouts.parse_split_json(json.dumps(split), "validation")
    assert val == [("v_Archery_g01_c01", "Archery", 0)]
    _, train = layouts.parse_split_json(json.dumps(split), "training")
    assert ("v_Archery_g08_c02", "Archery", 120) in train


def test_split_json_errors():
    with pytest.raises(ValueError, match="subset"):
        layouts.parse_split_json("{}", "testing")
    with pytest.raises(ValueError, match="labels"):
        layouts.parse_split_json('{"database": {}}', "training")
    bad = {"labels": ["a"], "database": {"v": {"subset": "training", "annotations": {"label": "b"}}}}
    with pytest.raises(ValueError, match="'b'"):
        layouts.parse_split_json(json.dumps(bad), "training")
    with pytest.raises(ValueError, match="classInd"):
        layouts.ucf101_split(CLASS_IND, "Boxing/v_Boxing_g01_c01.avi 3\n", "", {})


def test_train_clip_is_consecutive_and_in_range():
    rng = random.Random(0)
    for _ in range(50):
        clip = video.train_clip(40, 16, rng)
        assert len(clip) == 16 and 1 <= clip[0] <= 25
        assert clip == list(range(clip[0], clip[0] + 16))


def test_train_clip_loop_pads_short_videos():
    assert video.train_clip(5, 16, random.Random(0)) == [1, 2, 3, 4, 5] * 3 + [1]
    assert video.loop_pad([7, 8], 5) == [7, 8, 7, 8, 7]


def test_sliding_windows_cover_the_video_without_overlap():
    windows = video.sliding_windows(40, 16)
    assert [w[0] for w in windows] == [1, 17, 33]
    assert windows[1] == list(range(17, 33))
    assert windows[2] == [33, 34, 35, 36, 37, 38, 39, 40] * 2  # the partial last window, loop-padded
    assert video.sliding_windows(16, 16) == [list(range(1, 17))]
    assert video.frame_name(3) == "image_00003.jpg"


def test_shards_are_disjoint_and_cover_the_data():
    shards = [sampling.shard_indices(10, 3, r, shuffle=True, seed=5, epoch=0) for r in range(3)]
    assert all(len(s) == 4 for s in shards)  # padded to equal length
    assert set().union(*shards) == set(range(10))
    # only the 2 padding samples (the permutation's first ones, dealt again) appear twice
    assert len(shards[0] + shards[1] + shards[2]) - len(set().union(*shards)) == 2
    unpadded = [sampling.shard_indices(12, 3, r, shuffle=True, seed=5, epoch=0) for r in range(3)]
    assert sorted(unpadded[0] + unpadded[1] + unpadded[2]) == list(range(12))


def test_shuffle_changes_per_epoch_but_is_the_same_on_every_rank():
    e0 = sampling.shard_indices(100, 1, 0, shuffle=True, seed=1, epoch=0)
    e1 = sampling.shard_indices(100, 1, 0, shuffle=True, seed=1, epoch=1)
    assert e0 != e1 and sorted(e0) == list(range(100))
    assert sampling.shard_indices(100, 1, 0, shuffle=False, seed=1, epoch=3) == list(range(100))


def test_repeated_augmentation_keeps_copies_together_on_one_rank():
    order = sampling.shard_indices(12, 2, 1, shuffle=True, seed=0, epoch=0, repeats=3)
    groups = [order[i : i + 3] for i in range(0, len(order), 3)]
    assert all(len(set(g)) == 1 for g in groups)
    other = sampling.shard_indices(12, 2, 0, shuffle=True, seed=0, epoch=0, repeats=3)
    assert not set(order) & set(other)
    assert len(order) + len(other) == 12  # an epoch is as long as without repetition


def test_zoo_data_cli_synth_and_ucf101_json(tmp_path, monkeypatch, capsys):
    from zoo_workloads.cli import data as data_cli

    monkeypatch.setenv("ZOO_TERMINATION_LOG", str(tmp_path / "term"))
    assert (
        data_cli.main(
            [
                "synth",
                "--layout",
                "rp2k",
                "--out",
                str(tmp_path / "rp2k"),
                "--classes",
                "2",
                "--per-class",
                "2",
                "--size",
                "16",
            ]
        )
        == 0
    )
    assert layouts.list_classes(tmp_path / "rp2k" / "all" / "test") == ["class_000", "class_001"]
    (tmp_path / "classInd.txt").write_text(CLASS_IND)
    (tmp_path / "trainlist01.txt").write_text(TRAIN)
    (tmp_path / "testlist01.txt").write_text(TEST)
    frames = tmp_path / "frames" / "Archery" / "v_Archery_g01_c01"
    frames.mkdir(parents=True)
    for i in range(1, 4):
        (frames / video.frame_name(i)).write_bytes(b"")
    out = tmp_path / "frames" / "ucf101_01.json"
    assert (
        data_cli.main(
            [
                "ucf101-json",
                "--class-ind",
                str(tmp_path / "classInd.txt"),
                "--train-list",
                str(tmp_path / "trainlist01.txt"),
                "--test-list",
                str(tmp_path / "testlist01.txt"),
                "--frames-dir",
                str(tmp_path / "frames"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    _, val = layouts.parse_split_json(out.read_text(), "validation")
    assert val == [("v_Archery_g01_c01", "Archery", 3)]
    # a missing list file is a dataset error (66), not a traceback
    assert (
        data_cli.main(
            [
                "ucf101-json",
                "--class-ind",
                str(tmp_path / "nope.txt"),
                "--train-list",
                "x",
                "--test-list",
                "y",
                "--out",
                str(out),
            ]
        )
        == 66
    )
    assert "nope.txt does not exist" in capsys.readouterr().err
