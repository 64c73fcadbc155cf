"""Model-specific losses: label-smoothed cross-entropy and MultiGrain's classification + margin loss.

`create_loss(model_name, num_classes, hparams)` returns a Cell taking (model output, labels), where labels are
int32 class indices and the output is logits, or (logits, embedding) for models whose spec says
"logits+embedding".
"""

from __future__ import annotations

from typing import Any

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from zoo_workloads.models import model_spec


def smoothing_values(num_classes: int, epsilon: float, *, uniform_off: bool = False) -> tuple[float, float]:
    """(on, off) target values: the zoo's on = 1 - eps, off = eps / (K - 1); with uniform_off (GENet's reference)
    off = eps / K and on still 1 - eps, so a target row sums to 1 - eps / K there (kept as the reference has it)."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 for label smoothing, got {num_classes}")
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {epsilon}")
    if uniform_off:
        return 1.0 - epsilon, epsilon / num_classes
    return 1.0 - epsilon, epsilon / (num_classes - 1)


class SmoothedCrossEntropy(nn.Cell):
    """Mean over the batch of -sum(target * log_softmax(logits)) with (on, off) smoothed one-hot targets."""

    def __init__(self, num_classes: int, epsilon: float = 0.0, *, uniform_off: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        on, off = smoothing_values(num_classes, epsilon, uniform_off=uniform_off)
        self.on = Tensor(on, ms.float32)
        self.off = Tensor(off, ms.float32)
        self.log_softmax = nn.LogSoftmax(axis=-1)

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        target = ops.one_hot(labels, self.num_classes, self.on, self.off)
        log_p = self.log_softmax(logits.astype(ms.float32))
        return ops.mean(-ops.reduce_sum(target * log_p, -1))


def margin_terms(d_ap: Tensor, d_an: Tensor, beta: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """MultiGrain/Wu et al. margin loss terms: pos = max(0, d_ap - beta + alpha), neg = max(0, beta - d_an + alpha)."""
    return ops.relu(d_ap - beta + alpha), ops.relu(beta - d_an + alpha)


def pairwise_distances(embedding: Tensor) -> Tensor:
    """Euclidean distance matrix of (B, D) rows; sqrt is clamped away from 0 for a finite gradient."""
    sq = ops.reduce_sum(embedding * embedding, 1)
    d2 = ops.expand_dims(sq, 1) + ops.expand_dims(sq, 0) - 2.0 * ops.matmul(embedding, embedding.T)
    return ops.sqrt(ops.clamp(d2, min=1e-8))


class MarginLoss(nn.Cell):
    """Margin loss with distance-weighted negative sampling (Wu et al., "Sampling Matters in Deep Embedding
    Learning", arXiv 1706.07567), as MultiGrain (arXiv 1902.05509) uses it on L2-normalised embeddings.

    Every same-label pair (i, j != i) is a positive term; for each anchor, `negatives` negatives are drawn with
    probability proportional to 1/q(d), q(d) ∝ d^(n-2) (1 - d^2/4)^((n-3)/2) the density of distances between
    points uniform on the n-sphere, with d clipped below at `cutoff` and pairs beyond `nonzero_cutoff` (whose
    loss is zero) excluded. Only as many negatives as the anchor has positives are used (one per positive pair).
    The loss is the sum of all terms over the number of non-zero terms. beta is learned (init 1.2).
    """

    def __init__(
        self,
        *,
        alpha: float = 0.2,
        beta_init: float = 1.2,
        negatives: int = 2,
        cutoff: float = 0.5,
        nonzero_cutoff: float = 1.4,
    ) -> None:
        super().__init__()
        if negatives < 1:
            raise ValueError(f"repeated_augment must be >= 2 (one image and a positive), got {negatives + 1}")
        self.alpha = float(alpha)
        self.beta = Parameter(Tensor(beta_init, ms.float32), name="beta")
        self.negatives = negatives
        self.cutoff = cutoff
        self.nonzero_cutoff = nonzero_cutoff

    def sample_negatives(self, dist: Tensor, labels: Tensor, dim: int) -> Tensor:
        """(B, negatives) indices of negatives drawn for each anchor of a (B, B) distance matrix of dim-d
        embeddings; never the anchor itself nor a same-label sample."""
        d = ops.stop_gradient(ops.clamp(dist, min=self.cutoff))
        log_w = (2.0 - dim) * ops.log(d) - ((dim - 3.0) / 2.0) * ops.log(
            ops.clamp(1.0 - 0.25 * d * d, min=1e-8)
        )
        is_neg = ops.expand_dims(labels, 1) != ops.expand_dims(labels, 0)
        allowed = ops.logical_and(is_neg, d < self.nonzero_cutoff)
        # Rows without an allowed negative fall back to uniform over all negatives.
        has_allowed = ops.sum(allowed.astype(ms.float32), 1, keepdim=True) > 0
        allowed = ops.where(has_allowed, allowed, is_neg)
        log_w = ops.where(allowed, log_w, ops.full_like(log_w, -1e30))
        weights = ops.exp(log_w - ops.amax(log_w, 1, keepdims=True))
        # A tiny floor keeps every row drawable (a batch of one label has no negatives); construct() masks
        # out any drawn index that is not a negative.
        weights = ops.where(allowed, weights, ops.zeros_like(weights)) + 1e-20
        return ops.multinomial(weights, self.negatives, replacement=True).astype(ms.int32)

    def construct(self, embedding: Tensor, labels: Tensor) -> Tensor:
        dist = pairwise_distances(embedding.astype(ms.float32))
        same = ops.expand_dims(labels, 1) == ops.expand_dims(labels, 0)
        eye = ops.eye(dist.shape[0], dist.shape[0], ms.bool_)
        pos_mask = ops.logical_and(same, ops.logical_not(eye)).astype(ms.float32)
        n_pos = ops.sum(pos_mask, 1, keepdim=True)
        neg_idx = self.sample_negatives(dist, labels, embedding.shape[1])
        d_an = ops.gather_elements(dist, 1, neg_idx)
        slots = ops.expand_dims(ops.arange(self.negatives).astype(ms.float32), 0)
        drawn_neg = ops.expand_dims(labels, 1) != ops.gather(labels, neg_idx, 0)
        neg_mask = ops.logical_and(slots < n_pos, drawn_neg).astype(ms.float32)
        pos, neg = margin_terms(dist, d_an, self.beta, self.alpha)
        pos, neg = pos * pos_mask, neg * neg_mask
        nonzero = ops.reduce_sum((pos > 0).astype(ms.float32)) + ops.reduce_sum((neg > 0).astype(ms.float32))
        return (ops.reduce_sum(pos) + ops.reduce_sum(neg)) / ops.clamp(nonzero, min=1.0)


class MultiGrainLoss(nn.Cell):
    """lambda * smoothed CE(logits) + (1 - lambda) * margin loss(embedding) on a (logits, embedding) output."""

    def __init__(self, num_classes: int, *, epsilon: float, mix_lambda: float, margin: MarginLoss) -> None:
        super().__init__()
        if not 0.0 <= mix_lambda <= 1.0:
            raise ValueError(f"mix_lambda must be in [0, 1], got {mix_lambda}")
        self.ce = SmoothedCrossEntropy(num_classes, epsilon)
        self.margin = margin
        self.mix_lambda = float(mix_lambda)

    def construct(self, output: tuple[Tensor, Tensor], labels: Tensor) -> Tensor:
        logits, embedding = output
        ce = self.ce(logits, labels)
        return self.mix_lambda * ce + (1.0 - self.mix_lambda) * self.margin(embedding, labels)


def create_loss(model_name: str, num_classes: int, hparams: dict[str, Any]) -> nn.Cell:
    """The training loss of a model from its hyperparameters (zoo_workloads.config.default_hyperparameters).

    Losses with parameters (MultiGrain's beta) must be trained too: build the optimizer over the parameters of
    the cell that holds both network and loss (e.g. nn.WithLossCell(net, loss).trainable_params()).
    """
    spec = model_spec(model_name)
    epsilon = float(hparams.get("label_smoothing", 0.0))
    if spec.outputs == "logits+embedding":
        repeats = int(hparams.get("repeated_augment", 3))
        margin = MarginLoss(
            alpha=float(hparams.get("margin_alpha", 0.2)),
            beta_init=float(hparams.get("margin_beta_init", 1.2)),
            negatives=repeats - 1,
        )
        return MultiGrainLoss(
            num_classes, epsilon=epsilon, mix_lambda=float(hparams.get("mix_lambda", 0.5)), margin=margin
        )
    # GENet's reference spreads the smoothing mass over all K classes (eps / K); the rest of the zoo over K - 1.
    return SmoothedCrossEntropy(num_classes, epsilon, uniform_off=model_name == "genet_res50")
