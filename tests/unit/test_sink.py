"""Ascend data sink: the sink size, Model.train's epochs in sinks, and the callback fed one call per sink."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from zoo_workloads.errors import ConfigError
from zoo_workloads.training import runner, sink


def test_divisors() -> None:
    assert sink.divisors(1) == [1]
    assert sink.divisors(36) == [1, 2, 3, 4, 6, 9, 12, 18, 36]
    assert sink.divisors(5338) == [1, 2, 17, 34, 157, 314, 2669, 5338]  # the seed's multigrain epoch


def test_automatic_size_is_about_five_seconds_and_divides_the_epoch() -> None:
    # resnet50_bam at the seed's 101 ms/step: at most 49 steps per 5 s; 1251 steps (ImageNet, 8 x 128) = 3*3*139.
    assert sink.sink_size(1251, 101.0) == 9
    assert sink.sink_size(1000, 101.0) == 40  # 40 divides 1000, 49 does not
    assert (
        sink.sink_size(5338, 20.4) == 157
    )  # multigrain: 245 steps fit 5 s; 157 is the largest divisor below
    assert sink.sink_size(22, 263.483) == 11  # glore: 18 fit; of 22's divisors 11
    assert sink.sink_size(7, 10_000.0) == 1  # a step longer than the target: one step per sink
    for steps in range(1, 300):
        size = sink.sink_size(steps, 101.0)
        assert steps % size == 0 and 1 <= size <= 49


def test_requested_size_must_divide_the_epoch() -> None:
    assert sink.sink_size(100, 101.0, requested=25) == 25
    with pytest.raises(
        ConfigError, match=r"sink_size: 30 does not divide the 100 steps per epoch .*1, 2, 4, 5"
    ):
        sink.sink_size(100, 101.0, requested=30)


def test_train_epochs_counts_sinks() -> None:
    assert sink.train_epochs(epochs=4, start=0, steps_per_epoch=22, size=11) == (8, 0)
    assert sink.train_epochs(epochs=4, start=2, steps_per_epoch=22, size=11) == (8, 4)


class FakeRun:
    """What ZooCallback uses of a Run, recording what it does."""

    def __init__(self, steps: int, epochs: int) -> None:
        self.train = types.SimpleNamespace(steps=steps)
        self.p = {"epochs": epochs}
        self.global_batch = 8
        self.stop = runner.StopRequest()
        self.events: list[tuple[Any, ...]] = []
        self.step_ends: list[tuple[int, int]] = []  # after_step: where a step checkpoint may be taken
        self.log = types.SimpleNamespace(
            human=lambda text: None,
            progress=lambda *a: None,
            emit=lambda kind, **f: self.events.append((kind, f.get("epoch"), f.get("step"))),
        )

    def after_step(self, epoch: int, step: int, net: Any) -> None:
        self.step_ends.append((epoch, step))

    def end_epoch(self, epoch: int, losses: list[float], seconds: float, net: Any) -> None:
        self.events.append(("end_epoch", epoch, len(losses)))

    def stop_now(self, epoch: int, step: int, net: Any) -> None:
        self.events.append(("stop_now", epoch, step))
        raise RuntimeError("stopped")


class Tensor:
    def __init__(self, value: float) -> None:
        self.value = value

    def asnumpy(self) -> np.ndarray:
        return np.array(self.value, dtype=np.float32)


def call(cb: runner.ZooCallback, loss: float = 1.0) -> None:
    args = types.SimpleNamespace(net_outputs=Tensor(loss), train_network=None, cur_epoch_num=-1)
    cb.on_train_step_end(types.SimpleNamespace(original_args=lambda: args))


# 2 epochs of 6 steps, 3 per sink: one step event per sink, and each real epoch ends after its second sink.
PER_SINK_EVENTS = [
    ("step", 1, 3),
    ("step", 1, 6),
    ("end_epoch", 1, 2),
    ("step", 2, 3),
    ("step", 2, 6),
    ("end_epoch", 2, 2),
]


def test_callback_one_call_per_sink_keeps_real_epochs_and_steps() -> None:
    run = FakeRun(steps=6, epochs=2)
    cb = runner.ZooCallback(run, per_call=3)  # MindSpore calls back every 3 steps and calls that an epoch
    for _ in range(4):
        call(cb)
    assert run.events == PER_SINK_EVENTS
    assert run.step_ends == [(1, 3), (1, 6), (2, 3), (2, 6)]  # step checkpoints only at sink boundaries


def test_callback_resumed_epoch_and_graceful_stop_at_a_sink_boundary() -> None:
    run = FakeRun(steps=6, epochs=4)
    cb = runner.ZooCallback(run, start_epoch=2, per_call=2)  # epochs 1-2 done: the next is epoch 3
    call(cb)
    run.stop.request()
    with pytest.raises(RuntimeError, match="stopped"):
        call(cb)
    assert run.events == [("step", 3, 2), ("step", 3, 4), ("stop_now", 3, 4)]
    # Stepwise (CPU), resumed mid-epoch after 4 of 6 steps: the epoch ends after 2 more calls.
    run = FakeRun(steps=6, epochs=4)
    cb = runner.ZooCallback(run, skip_steps=4, start_epoch=2)
    call(cb)
    call(cb)
    assert run.events == [("step", 3, 5), ("step", 3, 6), ("end_epoch", 3, 2)]


def test_simulated_npu_reports_per_sink_like_the_hardware() -> None:
    # The twin trains on CPU, where MindSpore calls back every step: replayed as the hardware's one call per sink,
    # so the same events come out (PER_SINK_EVENTS).
    run = FakeRun(steps=6, epochs=2)
    cb = runner.ZooCallback(run, per_call=3, replay=True)
    for i in range(12):
        call(cb, loss=float(i))
    assert run.events == PER_SINK_EVENTS
    assert cb.losses == []  # reset at the epoch's end; the sink's last step's loss is the one reported
    # A stop asked for inside a sink waits for its end, as on the hardware.
    run = FakeRun(steps=6, epochs=2)
    cb = runner.ZooCallback(run, per_call=3, replay=True)
    call(cb)
    run.stop.request()
    call(cb)
    with pytest.raises(RuntimeError, match="stopped"):
        call(cb)
    assert run.events == [("step", 1, 3), ("stop_now", 1, 3)]


def test_simulated_npu_gets_a_sink_size_and_plain_cpu_none() -> None:
    run = runner.Run.__new__(runner.Run)
    run.args = types.SimpleNamespace(device="CPU")
    run.p = {"sink_size": 0, "optimizer": "momentum", "ascend_step_ms": 100.0}
    run.train = types.SimpleNamespace(steps=40)
    lines: list[str] = []
    run.log = types.SimpleNamespace(human=lines.append)
    run.simulated_npu = False
    assert run.sink_size() == 0
    run.simulated_npu = True
    assert run.sink_size() == 40 and "simulated NPU" in lines[-1]
    run.p["sink_size"] = 3
    with pytest.raises(ConfigError, match="sink_size: 3 does not divide the 40"):
        run.sink_size()


def test_callback_refuses_a_non_finite_loss() -> None:
    cb = runner.ZooCallback(FakeRun(steps=6, epochs=1), per_call=3)
    with pytest.raises(FloatingPointError, match="epoch 1 step 3"):
        call(cb, float("nan"))
