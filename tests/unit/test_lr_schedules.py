"""Every learning-rate mode and the warmup, against the formulas of MODELS.md."""

import itertools
import math

import pytest

from zoo_workloads.training.lr import Schedule, learning_rates


def sched(mode, warmup=0, **kw):
    base = {
        "lr_init": 0.0,
        "lr_max": 1.0,
        "lr_end": 0.0,
        "warmup_epochs": warmup,
        "epochs": 10,
        "steps_per_epoch": 10,
    }
    base.update(kw)
    return Schedule(mode, **base)


def test_warmup_rises_linearly_to_lr_max():
    rates = learning_rates(sched("linear", warmup=2, lr_init=0.1))
    assert rates[0] == pytest.approx(0.1 + 0.9 * 1 / 20)
    assert rates[19] == pytest.approx(1.0)
    assert all(b > a for a, b in itertools.pairwise(rates[:20]))


def test_linear_after_warmup():
    rates = learning_rates(sched("linear", warmup=2, lr_end=0.2))
    assert len(rates) == 100
    i = 60  # lr_max - (lr_max - lr_end) * (i - w) / (T - w)
    assert rates[i] == pytest.approx(1.0 - 0.8 * (60 - 20) / 80)
    assert rates[-1] == pytest.approx(1.0 - 0.8 * 79 / 80)


def test_poly_is_quadratic_decay():
    rates = learning_rates(sched("poly", warmup=1))
    assert rates[10] == pytest.approx(1.0)
    assert rates[55] == pytest.approx((1 - 45 / 90) ** 2)


def test_cosine_per_step():
    rates = learning_rates(sched("cosine", lr_end=0.1))
    assert rates[0] == pytest.approx(1.0)
    assert rates[50] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.5)) / 2)
    assert min(rates) >= 0.1


def test_cosine_per_epoch_like_bam():
    # BAM: lr = base * (1 + cos(pi * epoch / 150)) / 2, constant within an epoch.
    rates = learning_rates(sched("cosine", lr_max=0.02, cosine_epochs=150, epochs=3, steps_per_epoch=4))
    assert rates[:4] == [pytest.approx(0.02)] * 4
    assert rates[8] == pytest.approx(0.02 * (1 + math.cos(math.pi * 2 / 150)) / 2)


def test_steps_decay_at_30_60_80_percent():
    rates = learning_rates(sched("steps"))
    assert rates[29] == pytest.approx(1.0)
    assert rates[30] == pytest.approx(0.1)
    assert rates[60] == pytest.approx(0.01)
    assert rates[80] == pytest.approx(0.001)


def test_unknown_mode_and_bad_sizes():
    with pytest.raises(ValueError, match="lr_mode"):
        learning_rates(sched("exp"))
    with pytest.raises(ValueError):
        learning_rates(sched("linear", steps_per_epoch=0))
