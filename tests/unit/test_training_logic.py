"""Pure parts of training: weight-decay grouping, THOR damping, checkpoint retention,
accuracy metrics (incl. the sliding-window video aggregation) and launch detection."""

import numpy as np
import pytest

from zoo_workloads.errors import ConfigError
from zoo_workloads.training import checkpoints, distributed, metrics, optim


def test_no_weight_decay_on_beta_gamma_bias():
    names = [
        "stem.0.weight",
        "stem.1.gamma",
        "stem.1.beta",
        "fc.weight",
        "fc.bias",
        "layer1.0.bam.beta_margin",
    ]
    decay, no_decay = optim.split_decay(names)
    assert decay == ["stem.0.weight", "fc.weight"]
    assert no_decay == ["stem.1.gamma", "stem.1.beta", "fc.bias", "layer1.0.bam.beta_margin"]


def test_thor_damping_decays_per_ten_epochs():
    damping = optim.thor_damping(0.03, 0.5, epochs=20, steps_per_epoch=5)
    assert len(damping) == 100
    assert damping[49] == pytest.approx(0.03 * 0.5**1.0)  # end of epoch 10
    assert damping[99] == pytest.approx(0.03 * 0.5**2.0)


def test_checkpoint_retention_keeps_the_last_k(tmp_path):
    assert checkpoints.stale_epochs([5, 1, 3, 2, 4], 2) == [1, 2, 3]
    assert checkpoints.stale_epochs([1, 2], 5) == []
    assert checkpoints.stale_epochs([1, 2, 3], 0) == []
    for epoch in (1, 2, 3):
        checkpoints.epoch_path(tmp_path, "m", epoch).write_bytes(b"x")
    checkpoints.best_path(tmp_path, "m").write_bytes(b"x")
    (tmp_path / "m_other-1.ckpt").write_bytes(b"x")
    assert checkpoints.saved_epochs(tmp_path, "m") == [1, 2, 3]
    removed = checkpoints.prune(tmp_path, "m", 1)
    assert [p.name for p in removed] == ["m-1.ckpt", "m-2.ckpt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-3.ckpt", "m-best.ckpt", "m_other-1.ckpt"]


def test_topk_accuracy():
    scores = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    labels = np.array([1, 2, 1])
    assert metrics.topk_accuracy(scores, labels, 1) == pytest.approx(1 / 3)
    assert metrics.topk_accuracy(scores, labels, 2) == pytest.approx(2 / 3)
    assert metrics.topk_accuracy(scores, labels, 5) == 1.0  # capped at 3 classes


def test_video_metrics_average_softmax_over_windows():
    # video 0: two windows, one confidently wrong, one mildly right -> the mean softmax decides
    logits = np.array([[0.0, 5.0], [1.0, 0.0], [0.0, 2.0]])
    labels = np.array([0, 0, 1])
    videos = np.array([0, 0, 1])
    result = metrics.video_metrics(logits, labels, videos)
    assert result["clip_accuracy"] == pytest.approx(2 / 3)
    assert result["top_1_accuracy"] == pytest.approx(0.5)  # video 0 averages to class 1: wrong
    assert result["top_5_accuracy"] == 1.0
    assert np.allclose(metrics.softmax(np.array([[1000.0, 1000.0]])), 0.5)


def test_launch_detection():
    assert distributed.detect({}) == distributed.Launch("single", "worker", 1, 0)
    table = {"RANK_TABLE_FILE": "/etc/zoo/ranktable/hccl.json", "RANK_SIZE": "8", "DEVICE_ID": "3"}
    assert distributed.detect(table) == distributed.Launch("ranktable", "worker", 8, 3)
    assert distributed.detect({**table, "RANK_SIZE": "1"}).kind == "single"
    sched = {"MS_ROLE": "MS_SCHED", "MS_WORKER_NUM": "2", "MS_SCHED_HOST": "h", "MS_SCHED_PORT": "8118"}
    assert distributed.detect(sched) == distributed.Launch("dynamic", "scheduler", 2, 0)
    assert distributed.detect({**sched, "MS_ROLE": "MS_WORKER"}).role == "worker"
    with pytest.raises(ConfigError, match="MS_ROLE"):
        distributed.detect({"MS_ROLE": "MS_PSERVER"})
    with pytest.raises(ConfigError, match="RANK_SIZE"):
        distributed.detect({"RANK_SIZE": "two"})


def test_amp_level_per_device():
    from zoo_workloads.training.runner import resolve_amp

    assert resolve_amp("auto", "CPU") == "O0"
    assert resolve_amp("auto", "Ascend") == "O2"
    assert resolve_amp("auto", "GPU") == "O2"
    assert resolve_amp("O3", "Ascend") == "O3"
