"""Gather-Excite (GE) attention inside every bottleneck.

Hu et al., "Gather-Excite: Exploiting Feature Context in Convolutional Neural Networks", arXiv 1810.12348. The
global-extent variants of the MindSpore ModelZoo reference (research/cv/GENet_Res50), chosen by two flags:
- extra=False: GE-theta-minus, a parameter-free global mean as gather;
- extra=True, mlp=False: GE-theta, gather = depthwise conv whose kernel covers the whole map (+ BN);
- extra=True, mlp=True: GE-theta-plus, the GE-theta gather followed by an SE-style excite MLP
  (1x1 conv C -> C/16 -> ReLU -> 1x1 conv C/16 -> C, no biases).
(extra=False with mlp=True is the mean gather with the MLP excite, i.e. squeeze-excitation; allowed, not a GE
variant of the paper.) The gate is sigmoid(excite(gather(x))), broadcast over the map: output x * gate.

The paper's GE-theta gathers with a chain of stride-2 depthwise 3x3 convs; the reference code uses ONE depthwise
conv whose kernel equals the stage's spatial size (56, 28, 14, 7 at 224 px), and in layer1 it first halves the
map with a full 3x3 stride-2 conv + BN, then uses a depthwise kernel of 28. We follow the reference code, but
derive the kernel from the actual feature size so that any input size works.
"""

from __future__ import annotations

from mindspore import Tensor, nn, ops

from zoo_workloads.models.layers.common import DEFAULT_NORM, NormConfig, batch_norm_nd, ceil_div_size, conv_nd


class MeanGather(nn.Cell):
    """Parameter-free global average: (N, C, H, W) -> (N, C, 1, 1)."""

    def construct(self, x: Tensor) -> Tensor:
        return ops.mean(x, axis=(2, 3), keep_dims=True)


class DepthwiseGather(nn.Cell):
    """Depthwise conv with a kernel covering the whole (H, W) map, then BN: (N, C, H, W) -> (N, C, 1, 1).

    With pre_downsample (the reference's layer1), a full 3x3 stride-2 conv + BN halves the map first."""

    def __init__(
        self,
        channels: int,
        feat_size: tuple[int, ...],
        norm: NormConfig,
        *,
        pre_downsample: bool = False,
        same: bool = False,
    ) -> None:
        super().__init__()
        cells: list[nn.Cell] = []
        if pre_downsample:
            cells += [
                conv_nd(2, channels, channels, 3, stride=2, same=same),
                batch_norm_nd(2, channels, norm),
            ]
            feat_size = ceil_div_size(feat_size, 2)
        kernel = (int(feat_size[0]), int(feat_size[1]))
        cells += [
            conv_nd(2, channels, channels, kernel, padding=0, groups=channels),
            batch_norm_nd(2, channels, norm),
        ]
        self.body = nn.SequentialCell(cells)

    def construct(self, x: Tensor) -> Tensor:
        return self.body(x)


class GatherExcite(nn.Cell):
    """x * sigmoid(excite(gather(x))) with the gather/excite picked by (extra, mlp); see the module doc."""

    def __init__(
        self,
        channels: int,
        feat_size: tuple[int, int],
        *,
        extra: bool = True,
        mlp: bool = True,
        reduction: int = 16,
        pre_downsample: bool = False,
        norm: NormConfig = DEFAULT_NORM,
        same: bool = False,
    ) -> None:
        super().__init__()
        if extra:
            self.gather = DepthwiseGather(channels, feat_size, norm, pre_downsample=pre_downsample, same=same)
        else:
            self.gather = MeanGather()
        if mlp:
            hidden = max(channels // reduction, 1)
            self.excite = nn.SequentialCell(
                [conv_nd(2, channels, hidden, 1), nn.ReLU(), conv_nd(2, hidden, channels, 1)]
            )
        else:
            self.excite = nn.Identity()
        self.sigmoid = nn.Sigmoid()

    def gate(self, x: Tensor) -> Tensor:
        """The (N, C, 1, 1) gate in (0, 1)."""
        return self.sigmoid(self.excite(self.gather(x)))

    def construct(self, x: Tensor) -> Tensor:
        return x * self.gate(x)
