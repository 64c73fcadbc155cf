"""Global Reasoning (GloRe) unit: project features onto a graph of nodes, reason with a GCN, project back.

Chen et al., "Graph-Based Global Reasoning Networks", arXiv 1811.12814. Follows the MindSpore ModelZoo reference
(research/cv/glore_res): pre-activation BN -> ReLU before the state/projection/extend 1x1 convs and no 1/(H*W)
normalisation of the projection. Each unit starts as the identity; the reference gets there with gamma = 0 on
the extend path's BN, but in the order BN -> ReLU -> conv that BN then outputs exactly 0, the ReLU passes no
gradient at 0, and the whole unit never receives a gradient (we checked: it stays frozen). We zero the extend
conv's weights instead, which gives the same identity start and a unit that trains.

The reference casts both batch matmuls to float16 (GloreUnit_50/200, "for speed" on Ascend); ours computes them
in float32 unless `cast_fp16` is set on the unit, and with it set it equals the reference to the last bit
(benchmarks/modelzoo_equivalence.py).
"""

from __future__ import annotations

from mindspore import Tensor, nn, ops
from mindspore.common import dtype as mstype

from zoo_workloads.models.layers.common import DEFAULT_NORM, NormConfig, batch_norm_nd, conv_nd


class GCN(nn.Cell):
    """Graph convolution over a (N, S, nodes) node-state matrix: node-wise 1x1 conv plus identity, ReLU, then a
    state-wise 1x1 conv. Neither conv has a bias (reference code)."""

    def __init__(self, num_state: int, num_node: int) -> None:
        super().__init__()
        self.conv_node = conv_nd(1, num_node, num_node, 1)
        self.conv_state = conv_nd(1, num_state, num_state, 1)
        self.relu = nn.ReLU()

    def construct(self, x: Tensor) -> Tensor:
        # Conv over the node axis: nodes become channels, then back.
        h = ops.transpose(self.conv_node(ops.transpose(x, (0, 2, 1))), (0, 2, 1))
        return self.conv_state(self.relu(h + x))


class GloreUnit(nn.Cell):
    """x + extend(GCN(state(x) . proj(x)^T) . proj(x)) on a (N, C, H, W) map; C = num_in, S = 2*mid, nodes = mid."""

    def __init__(self, num_in: int, num_mid: int, norm: NormConfig = DEFAULT_NORM) -> None:
        super().__init__()
        self.num_state = 2 * num_mid
        self.num_node = num_mid
        self.conv_state = nn.SequentialCell(
            [batch_norm_nd(2, num_in, norm), nn.ReLU(), conv_nd(2, num_in, self.num_state, 1)]
        )
        self.conv_proj = nn.SequentialCell(
            [batch_norm_nd(2, num_in, norm), nn.ReLU(), conv_nd(2, num_in, self.num_node, 1)]
        )
        self.gcn = GCN(self.num_state, self.num_node)
        self.conv_extend = nn.SequentialCell(
            [batch_norm_nd(2, self.num_state, norm), nn.ReLU(), conv_nd(2, self.num_state, num_in, 1)]
        )
        self.cast_fp16 = False  # True: the reference's float16 matmuls (module doc)
        # Zero start of the residual branch (see the module doc for why not gamma = 0 on the BN).
        extend_conv = self.conv_extend[2]
        extend_conv.weight.set_data(ops.zeros(extend_conv.weight.shape, extend_conv.weight.dtype))

    def _bmm(self, a: Tensor, b: Tensor) -> Tensor:
        if self.cast_fp16:
            return ops.cast(ops.bmm(ops.cast(a, mstype.float16), ops.cast(b, mstype.float16)), mstype.float32)
        return ops.bmm(a, b)

    def construct(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        state = ops.reshape(self.conv_state(x), (n, self.num_state, h * w))
        proj = ops.reshape(self.conv_proj(x), (n, self.num_node, h * w))
        # Interaction space: V = X_state . B^T, (N, S, nodes); the reference does not divide by H*W.
        nodes = self._bmm(state, ops.transpose(proj, (0, 2, 1)))
        nodes = self.gcn(nodes)
        # Reverse projection Y = V' . B back onto the pixels.
        back = ops.reshape(self._bmm(nodes, proj), (n, self.num_state, h, w))
        return x + self.conv_extend(back)
