"""Data parallel on CPU: MindSpore's dynamic cluster (a scheduler + 2 workers on 127.0.0.1) through the real
zoo-launch -> zoo-train path. Gradients are averaged, so both workers end with identical weights."""

import json
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from zoo_train_helpers import BIN, tiny

from zoo_workloads.data import synth


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_workers_end_with_identical_weights(tmp_path: Path):
    data = synth.write_synthetic("imagefolder", tmp_path / "data", classes=3, per_class=8, size=32)
    out = tmp_path / "out"

    def command(data_dir: Path) -> list[str]:
        return [
            str(BIN / "zoo-launch"),
            "--",
            str(BIN / "zoo-train"),
            "--model",
            "resnet50_bam",
            "--data-dir",
            str(data_dir),
            "--num-classes",
            "3",
            "--output-dir",
            str(out),
            "--device",
            "CPU",
            *tiny("steps_per_epoch=3", "batch_size=2", "mode=graph", "save_every_rank=true"),
        ]

    base = {
        **os.environ,
        "MS_SCHED_HOST": "127.0.0.1",
        "MS_SCHED_PORT": str(_free_port()),
        "MS_WORKER_NUM": "2",
        "RANK_SIZE": "2",
    }
    procs = {}
    for name, extra in [
        ("sched", {"MS_ROLE": "MS_SCHED", "MS_NODE_ID": "sched"}),
        ("w0", {"MS_ROLE": "MS_WORKER", "MS_NODE_ID": "0"}),
        ("w1", {"MS_ROLE": "MS_WORKER", "MS_NODE_ID": "1"}),
    ]:
        env = {**base, **extra, "ZOO_TERMINATION_LOG": str(tmp_path / f"{name}.term")}
        # the scheduler pod need not mount the dataset: it only serves the cluster
        data_dir = tmp_path / "not-mounted" if name == "sched" else data
        procs[name] = subprocess.Popen(
            command(data_dir), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    outputs = {}
    try:
        for name, proc in procs.items():
            outputs[name] = proc.communicate(timeout=900)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}: {outputs[name][1][-2000:]}"

    for rank, name in enumerate(("w0", "w1")):
        events = [json.loads(line) for line in outputs[name][0].splitlines() if line.startswith("{")]
        assert {e["rank"] for e in events} == {rank}
        assert events[0]["event"] == "start" and events[0]["rank_size"] == 2
        assert json.loads((tmp_path / f"{name}.term").read_text())["status"] == "succeeded"

    import mindspore as ms

    first = ms.load_checkpoint(str(out / "rank_0" / "resnet50_bam-1.ckpt"))
    second = ms.load_checkpoint(str(out / "rank_1" / "resnet50_bam-1.ckpt"))
    assert first.keys() == second.keys()
    weights = [k for k in first if "moving_" not in k]
    stats = [k for k in first if "moving_" in k]
    assert len(weights) > 50
    for key in weights:
        assert np.array_equal(first[key].asnumpy(), second[key].asnumpy()), key
    # BatchNorm running statistics are local: they differ because each rank saw its own shard
    assert any(not np.array_equal(first[k].asnumpy(), second[k].asnumpy()) for k in stats)
