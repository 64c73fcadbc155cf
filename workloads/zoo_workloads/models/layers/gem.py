"""Generalized-mean (GeM) pooling.

Radenovic et al., "Fine-tuning CNN Image Retrieval with No Human Annotation", arXiv 1711.02512; used by MultiGrain
(Berman et al., arXiv 1902.05509) in place of ResNet-50's average pool, with p = 3 fixed.
gem(x) = (mean over H, W of clamp(x, eps)^p)^(1/p): p = 1 is average pooling, p -> inf tends to max pooling.
"""

from __future__ import annotations

from mindspore import Tensor, nn, ops


class GeM(nn.Cell):
    """(N, C, *spatial) -> (N, C) generalized mean with a fixed exponent p."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, dims: int = 2) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"gem_p must be > 0, got {p}")
        self.p = float(p)
        self.inv_p = 1.0 / float(p)
        self.eps = eps
        self.axes = tuple(range(2, 2 + dims))

    def construct(self, x: Tensor) -> Tensor:
        pooled = ops.mean(ops.pow(ops.clamp(x, min=self.eps), self.p), axis=self.axes, keep_dims=False)
        return ops.pow(pooled, self.inv_p)
