"""Bottleneck Attention Module (BAM).

Park et al., "BAM: Bottleneck Attention Module", arXiv 1807.06514. Placed between the stages of a ResNet.
Output x * (1 + sigmoid(Mc * Ms)): the paper combines the channel and spatial gates by a SUM; the MindSpore
ModelZoo reference (research/cv/resnet50_bam), with which the seed's accuracy was measured, MULTIPLIES them, and we
follow the reference.
"""

from __future__ import annotations

from mindspore import Tensor, nn, ops

from zoo_workloads.models.layers.common import DEFAULT_NORM, NormConfig, batch_norm_nd, conv_nd


class ChannelGate(nn.Cell):
    """Global average pool -> Dense(C, C/r) -> BN1d -> ReLU -> Dense(C/r, C): an (N, C, 1, 1) map."""

    def __init__(self, channels: int, reduction: int, norm: NormConfig) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Dense(channels, hidden)
        self.bn = batch_norm_nd(1, hidden, norm)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(hidden, channels)

    def construct(self, x: Tensor) -> Tensor:
        pooled = ops.mean(x, axis=(2, 3), keep_dims=False)
        gate = self.fc2(self.relu(self.bn(self.fc1(pooled))))
        return ops.expand_dims(ops.expand_dims(gate, 2), 3)


class SpatialGate(nn.Cell):
    """1x1 reduce C -> C/r, two dilated 3x3 convs (dilation 4), 1x1 to one channel: an (N, 1, H, W) map."""

    def __init__(self, channels: int, reduction: int, norm: NormConfig, dilation: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        cells: list[nn.Cell] = [
            conv_nd(2, channels, hidden, 1, bias=True),
            batch_norm_nd(2, hidden, norm),
            nn.ReLU(),
        ]
        for _ in range(2):
            cells += [
                conv_nd(2, hidden, hidden, 3, dilation=dilation, padding=dilation, bias=True),
                batch_norm_nd(2, hidden, norm),
                nn.ReLU(),
            ]
        cells.append(conv_nd(2, hidden, 1, 1, bias=True))
        self.body = nn.SequentialCell(cells)

    def construct(self, x: Tensor) -> Tensor:
        return self.body(x)


class BAM(nn.Cell):
    """x * (1 + sigmoid(channel_gate(x) * spatial_gate(x))), reduction r = 16."""

    def __init__(self, channels: int, reduction: int = 16, norm: NormConfig = DEFAULT_NORM) -> None:
        super().__init__()
        self.channel_gate = ChannelGate(channels, reduction, norm)
        self.spatial_gate = SpatialGate(channels, reduction, norm)
        self.sigmoid = nn.Sigmoid()

    def attention(self, x: Tensor) -> Tensor:
        """The gate 1 + sigmoid(Mc * Ms) in [1, 2], broadcast to x's shape."""
        return 1.0 + self.sigmoid(self.channel_gate(x) * self.spatial_gate(x))

    def construct(self, x: Tensor) -> Tensor:
        return x * self.attention(x)
