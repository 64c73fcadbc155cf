"""Label smoothing values, the smoothed cross-entropy, and MultiGrain's margin loss on hand-made examples."""

from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from zoo_workloads import config
from zoo_workloads.losses import (
    MarginLoss,
    MultiGrainLoss,
    SmoothedCrossEntropy,
    create_loss,
    margin_terms,
    pairwise_distances,
    smoothing_values,
)

ms.set_context(mode=ms.PYNATIVE_MODE)


def test_smoothing_values_zoo_and_genet_conventions() -> None:
    assert smoothing_values(1000, 0.1) == pytest.approx((0.9, 0.1 / 999))
    assert smoothing_values(1000, 0.1, uniform_off=True) == pytest.approx((0.9, 0.1 / 1000))
    assert smoothing_values(10, 0.0) == (1.0, 0.0)


@pytest.mark.parametrize(("classes", "eps", "field"), [(1, 0.1, "num_classes"), (10, 1.0, "label_smoothing")])
def test_smoothing_values_reject_bad_input(classes: int, eps: float, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        smoothing_values(classes, eps)


@pytest.mark.parametrize("uniform_off", [False, True])
def test_smoothed_cross_entropy_matches_numpy(uniform_off: bool) -> None:
    logits = np.array([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 3.0]], np.float32)
    labels = np.array([0, 2], np.int32)
    on, off = smoothing_values(4, 0.2, uniform_off=uniform_off)
    target = np.full((2, 4), off)
    target[np.arange(2), labels] = on
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -(target * log_p).sum(1).mean()
    got = SmoothedCrossEntropy(4, 0.2, uniform_off=uniform_off)(Tensor(logits), Tensor(labels))
    assert float(got.asnumpy()) == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_without_smoothing_is_plain_nll() -> None:
    logits = np.array([[1.0, 2.0, 3.0]], np.float32)
    got = float(SmoothedCrossEntropy(3, 0.0)(Tensor(logits), Tensor(np.array([2], np.int32))).asnumpy())
    assert got == pytest.approx(np.log(np.exp(logits).sum()) - 3.0, rel=1e-5)


def test_margin_terms_by_hand() -> None:
    pos, neg = margin_terms(
        Tensor(np.array([0.5, 1.2], np.float32)),
        Tensor(np.array([0.9, 1.6], np.float32)),
        Tensor(1.2, ms.float32),
        0.2,
    )
    np.testing.assert_allclose(pos.asnumpy(), [0.0, 0.2], atol=1e-6)
    np.testing.assert_allclose(neg.asnumpy(), [0.5, 0.0], atol=1e-6)


# Three unit vectors: 0 and 1 share a label, 2 is the only negative, so negative sampling is deterministic.
EMB = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]], np.float32)
LABELS = np.array([0, 0, 1], np.int32)
D01, D02, D12 = np.sqrt(0.4), np.sqrt(0.8), np.sqrt(0.08)


def test_pairwise_distances() -> None:
    d = pairwise_distances(Tensor(EMB)).asnumpy()
    np.testing.assert_allclose(d[0, 1], D01, rtol=1e-5)
    np.testing.assert_allclose(d[1, 2], D12, rtol=1e-5)


@pytest.mark.parametrize("beta", [1.2, 0.5])
def test_margin_loss_on_a_hand_made_batch(beta: float) -> None:
    loss = MarginLoss(alpha=0.2, beta_init=beta, negatives=1)
    # Positive pairs (0,1) and (1,0); negatives: anchor 0 -> 2, anchor 1 -> 2; anchor 2 has no positive, so
    # no negative of its own. Averaged over the non-zero terms.
    terms = [max(0.0, D01 - beta + 0.2)] * 2 + [max(0.0, beta - D02 + 0.2), max(0.0, beta - D12 + 0.2)]
    expected = sum(terms) / sum(t > 0 for t in terms)
    got = float(loss(Tensor(EMB), Tensor(LABELS)).asnumpy())
    assert got == pytest.approx(expected, rel=1e-5)


def test_margin_beta_is_learned() -> None:
    loss = MarginLoss(alpha=0.2, beta_init=1.2, negatives=1)
    grad_fn = ms.grad(lambda e, y: loss(e, y), grad_position=None, weights=loss.trainable_params())
    (grad,) = grad_fn(Tensor(EMB), Tensor(LABELS))
    # beta = 1.2: both negative terms are active (+1 each), no positive term: d(loss)/d(beta) = 2 / 2.
    assert float(grad.asnumpy()) == pytest.approx(1.0, rel=1e-5)
    assert loss.trainable_params()[0].name == "beta"  # excluded from weight decay by name


def test_distance_weighted_sampling_never_picks_positives_and_prefers_close_negatives() -> None:
    # Anchor 0 (label 0) has a positive (1), a close negative (2, d ~ 0.6) and a far one (3, d ~ 1.3).
    angles = np.array([0.0, 0.3, 0.61, 1.41])
    emb = np.zeros((4, 16), np.float32)
    emb[:, 0], emb[:, 1] = np.cos(angles), np.sin(angles)
    labels = Tensor(np.array([0, 0, 1, 2], np.int32))
    loss = MarginLoss(negatives=200)
    dist = pairwise_distances(Tensor(emb))
    drawn = loss.sample_negatives(dist, labels, 16).asnumpy()
    assert drawn.shape == (4, 200)
    assert not np.isin(drawn[0], [0, 1]).any() and not np.isin(drawn[1], [0, 1]).any()
    assert not (drawn[2] == 2).any() and not (drawn[3] == 3).any()
    assert (drawn[0] == 2).mean() > 0.9  # 1/q(d) weighting favours the harder (closer) negative


def test_multigrain_loss_mixes_ce_and_margin() -> None:
    logits = Tensor(np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]], np.float32))
    margin = MarginLoss(alpha=0.2, beta_init=1.2, negatives=1)
    total = MultiGrainLoss(2, epsilon=0.1, mix_lambda=0.5, margin=margin)(
        (logits, Tensor(EMB)), Tensor(LABELS)
    )
    ce = SmoothedCrossEntropy(2, 0.1)(logits, Tensor(LABELS))
    expected = 0.5 * float(ce.asnumpy()) + 0.5 * float(margin(Tensor(EMB), Tensor(LABELS)).asnumpy())
    assert float(total.asnumpy()) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="mix_lambda"):
        MultiGrainLoss(2, epsilon=0.1, mix_lambda=1.5, margin=margin)


def test_create_loss_per_model() -> None:
    multigrain = create_loss("multigrain", 10, config.default_hyperparameters("multigrain"))
    assert isinstance(multigrain, MultiGrainLoss)
    assert multigrain.margin.negatives == 2  # repeated_augment 3: two positives per anchor
    genet = create_loss("genet_res50", 10, config.default_hyperparameters("genet_res50"))
    glore = create_loss("glore_res50", 10, config.default_hyperparameters("glore_res50"))
    assert float(genet.off.asnumpy()) == pytest.approx(0.1 / 10)
    assert float(glore.off.asnumpy()) == pytest.approx(0.1 / 9)
    with pytest.raises(ValueError, match="unknown model"):
        create_loss("resnet51", 10, {})
