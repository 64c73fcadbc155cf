"""The one ResNet trunk (2D images and 3D clips) that every model of the zoo is built from.

He et al., "Deep Residual Learning for Image Recognition", arXiv 1512.03385 (bottleneck ResNet-50, stride on the
3x3 conv as in "ResNet v1.5"); He et al., "Identity Mappings in Deep Residual Networks", arXiv 1603.05027
(pre-activation blocks); He et al., "Bag of Tricks", arXiv 1812.01187 (ResNet-D deep stem and avg-pool shortcut).

A model is this trunk plus hooks, in the style of timm/mindcv: the stem kind, the shortcut kind, a module inside
every block (`block_attn`), modules inserted after chosen blocks (`insert_after_block`) or after whole stages
(`insert_after_stage`), and the pooling. Each hook is a factory called with a `BlockSite` (where the module goes,
its channels and the feature size there) so modules can size themselves from the actual input size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mindspore import Parameter, Tensor, nn, ops

from zoo_workloads.models.layers.common import (
    DEFAULT_NORM,
    NormConfig,
    avg_down_nd,
    batch_norm_nd,
    ceil_div_size,
    conv_nd,
    conv_out_size,
    max_pool_nd,
    same_out_size,
)

EXPANSION = 4


@dataclass(frozen=True)
class BlockSite:
    """Where a hooked module goes; every module factory receives one."""

    stage: int  # 0-based stage (layer1 = 0)
    index: int  # 0-based block within the stage; -1 for a module after the whole stage
    channels: int  # channels of the tensor the module sees
    feat_size: tuple[int, ...]  # its spatial size: (H, W) or (T, H, W)
    dims: int  # 2 (images) or 3 (clips)
    norm: NormConfig  # the model's BatchNorm settings
    same: bool = False  # the model's strided convs use pad_mode='same' (ResNet's conv_same)


ModuleFactory = Callable[[BlockSite], nn.Cell | None]


def at_positions(
    factory: Callable[[BlockSite], nn.Cell], positions: Mapping[int, Sequence[int]]
) -> ModuleFactory:
    """Restrict a factory to the given {stage: [block indices]} (0-based); None (no module) elsewhere."""
    wanted = {(stage, index) for stage, indices in positions.items() for index in indices}

    def build(site: BlockSite) -> nn.Cell | None:
        return factory(site) if (site.stage, site.index) in wanted else None

    return build


def scale_positions(
    positions: Mapping[int, Sequence[int]], base_layers: Sequence[int], layers: Sequence[int]
) -> dict[int, list[int]]:
    """Map insertion points given for `base_layers` onto a reduced `layers` proportionally (index * new / old,
    floored), so that reduced test models keep at least one of each inserted module per stage."""
    scaled: dict[int, list[int]] = {}
    for stage, indices in positions.items():
        old, new = base_layers[stage], layers[stage]
        scaled[stage] = sorted({min(i * new // old, new - 1) for i in indices})
    return scaled


class GlobalAvgPool(nn.Cell):
    """Mean over every spatial axis: (N, C, *spatial) -> (N, C)."""

    def __init__(self, dims: int = 2) -> None:
        super().__init__()
        self.axes = tuple(range(2, 2 + dims))

    def construct(self, x: Tensor) -> Tensor:
        return ops.mean(x, axis=self.axes, keep_dims=False)


def _shortcut(
    kind: str, dims: int, in_ch: int, out_ch: int, stride: int | tuple[int, ...], norm: NormConfig
) -> nn.Cell:
    """Projection shortcut: 'conv' = strided 1x1 conv + BN (type B); 'avgdown' = AvgPool -> 1x1 conv -> BN
    (ResNet-D); 'preact' = its own BN-ReLU, then the strided 1x1 conv (PreActProjection)."""
    if kind == "preact":
        return PreActProjection(dims, in_ch, out_ch, stride, norm)
    if kind == "avgdown":
        # Index 0 is the pool also at stride 1 (an identity there), so the conv/BN keep the reference's indices
        # (glore_res50's down_sample_layer.1/.2, with AvgPool2d(1, 1) at .0).
        pool = avg_down_nd(dims, stride) if stride != 1 else nn.Identity()
        return nn.SequentialCell([pool, conv_nd(dims, in_ch, out_ch, 1), batch_norm_nd(dims, out_ch, norm)])
    return nn.SequentialCell(
        [conv_nd(dims, in_ch, out_ch, 1, stride=stride), batch_norm_nd(dims, out_ch, norm)]
    )


class Bottleneck(nn.Cell):
    """1x1 -> 3x3 (stride) -> 1x1 (x4) with BN after each conv; `attn` acts on the residual branch before the add."""

    def __init__(
        self,
        in_ch: int,
        mid: int,
        stride: int | tuple[int, ...],
        *,
        dims: int,
        norm: NormConfig,
        shortcut: nn.Cell | None,
        attn: nn.Cell | None,
        zero_init_last: bool,
        same: bool = False,
    ) -> None:
        super().__init__()
        out_ch = mid * EXPANSION
        self.conv1 = conv_nd(dims, in_ch, mid, 1)
        self.bn1 = batch_norm_nd(dims, mid, norm)
        self.conv2 = conv_nd(dims, mid, mid, 3, stride=stride, same=same)
        self.bn2 = batch_norm_nd(dims, mid, norm)
        self.conv3 = conv_nd(dims, mid, out_ch, 1)
        # gamma 0: each residual block starts as the identity (Goyal et al., arXiv 1706.02677).
        self.bn3 = batch_norm_nd(dims, out_ch, norm, zero_gamma=zero_init_last)
        self.relu = nn.ReLU()
        # shortcut before attn: parameters are ordered as registered, and GENet's reference registers its
        # down_layer before the gather-excite (models/modelzoo.py keeps the reference's order)
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.attn = attn if attn is not None else nn.Identity()

    def construct(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.attn(self.bn3(self.conv3(out)))
        return self.relu(out + self.shortcut(x))


class PreActProjection(nn.Cell):
    """BN-ReLU-conv on the block's input, with a BatchNorm of its own rather than the block's pre-activation: the
    GloRe reference's BN_AC_Conv_w (research/cv/glore_res/src/glore_resnet.py, Residual_Unit_200), so that
    glore_res200 has its parameter set and function (models/modelzoo.py)."""

    def __init__(
        self, dims: int, in_ch: int, out_ch: int, stride: int | tuple[int, ...], norm: NormConfig
    ) -> None:
        super().__init__()
        self.bn = batch_norm_nd(dims, in_ch, norm)
        self.relu = nn.ReLU()
        self.conv = conv_nd(dims, in_ch, out_ch, 1, stride=stride)

    def construct(self, x: Tensor) -> Tensor:
        return self.conv(self.relu(self.bn(x)))


class PreActBottleneck(nn.Cell):
    """Pre-activation bottleneck: BN-ReLU-conv three times; a projection shortcut pre-activates the input itself."""

    def __init__(
        self,
        in_ch: int,
        mid: int,
        stride: int | tuple[int, ...],
        *,
        dims: int,
        norm: NormConfig,
        shortcut: nn.Cell | None,
        attn: nn.Cell | None,
        zero_init_last: bool,
        same: bool = False,
    ) -> None:
        super().__init__()
        del zero_init_last, same  # no last BN to zero; the glore_res200 reference pads its 3x3 symmetrically
        out_ch = mid * EXPANSION
        self.bn1 = batch_norm_nd(dims, in_ch, norm)
        self.conv1 = conv_nd(dims, in_ch, mid, 1)
        self.bn2 = batch_norm_nd(dims, mid, norm)
        self.conv2 = conv_nd(dims, mid, mid, 3, stride=stride)
        self.bn3 = batch_norm_nd(dims, mid, norm)
        self.conv3 = conv_nd(dims, mid, out_ch, 1)
        self.relu = nn.ReLU()
        self.attn = attn if attn is not None else nn.Identity()
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def construct(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        identity = self.shortcut(x)  # Identity, or a PreActProjection with its own BN-ReLU
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return self.attn(out) + identity


BLOCKS: dict[str, type[nn.Cell]] = {"bottleneck": Bottleneck, "preact": PreActBottleneck}


class ResNet(nn.Cell):
    """Bottleneck ResNet over (N, C, H, W) images or (N, C, T, H, W) clips, configured by hooks (module doc)."""

    def __init__(
        self,
        num_classes: int,
        *,
        layers: Sequence[int] = (3, 4, 6, 3),
        width: int = 64,
        input_size: Sequence[int] = (224, 224),
        in_channels: int = 3,
        block: Literal["bottleneck", "preact"] = "bottleneck",
        stem: Literal["plain", "deep"] = "plain",
        stem_stride: int | tuple[int, ...] = 2,
        shortcut: Literal["conv", "avgdown"] = "conv",
        norm: NormConfig = DEFAULT_NORM,
        zero_init_last: bool = False,
        block_attn: ModuleFactory | None = None,
        insert_after_block: ModuleFactory | None = None,
        insert_after_stage: ModuleFactory | None = None,
        pool: Callable[[int, int], nn.Cell] | None = None,
        return_embedding: bool = False,
        conv_same: bool = False,
        pool_same: bool = False,
        stem_norm: NormConfig | None = None,
    ) -> None:
        """conv_same / pool_same: the stem convs and the blocks' 3x3 convs / the stem's max pool use MindSpore's
        pad_mode='same', as the model's ModelZoo reference does (layers.common.conv_nd); stem_norm: the stem's
        BatchNorm settings where the reference's differ from the blocks' (GENet)."""
        super().__init__()
        dims = len(input_size)
        if dims not in (2, 3):
            raise ValueError(f"input_size must be (H, W) or (T, H, W), got {tuple(input_size)}")
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be 4 positive block counts, got {list(layers)}")
        self.preact = block == "preact"
        self.stem, size = _build_stem(
            stem,
            dims,
            in_channels,
            width,
            stem_stride,
            stem_norm or norm,
            tuple(input_size),
            conv_same,
            pool_same,
        )
        stages, in_ch = [], width
        for stage, (count, stride) in enumerate(zip(layers, (1, 2, 2, 2), strict=True)):
            cells: list[nn.Cell] = []
            mid = width * 2**stage
            for index in range(count):
                s = stride if index == 0 else 1
                size = ceil_div_size(size, s)
                site = BlockSite(stage, index, mid * EXPANSION, size, dims, norm, conv_same)
                proj = None
                if index == 0 and (s != 1 or in_ch != mid * EXPANSION):
                    proj = _shortcut(
                        "preact" if self.preact else shortcut, dims, in_ch, mid * EXPANSION, s, norm
                    )
                attn = block_attn(site) if block_attn else None
                cells.append(
                    BLOCKS[block](
                        in_ch,
                        mid,
                        s,
                        dims=dims,
                        norm=norm,
                        shortcut=proj,
                        attn=attn,
                        zero_init_last=zero_init_last,
                        same=conv_same,
                    )
                )
                extra = insert_after_block(site) if insert_after_block else None
                if extra is not None:
                    cells.append(extra)
                in_ch = mid * EXPANSION
            after = (
                insert_after_stage(BlockSite(stage, -1, in_ch, size, dims, norm, conv_same))
                if insert_after_stage
                else None
            )
            if after is not None:
                cells.append(after)
            stages.append(nn.SequentialCell(cells))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        # Pre-activation nets end with the BN-ReLU that the last block did not apply.
        self.final_act = (
            nn.SequentialCell([batch_norm_nd(dims, in_ch, norm), nn.ReLU()]) if self.preact else nn.Identity()
        )
        self.pool = pool(in_ch, dims) if pool else GlobalAvgPool(dims)
        self.fc = nn.Dense(in_ch, num_classes)
        self.num_features = in_ch
        self.feature_size = size
        self.return_embedding = return_embedding

    def forward_features(self, x: Tensor) -> Tensor:
        """Stem and the four stages: the last feature map."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.final_act(x)

    def construct(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        pooled = self.pool(self.forward_features(x))
        logits = self.fc(pooled)
        if self.return_embedding:
            return logits, l2_normalize(pooled)
        return logits


def l2_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Rows of x divided by their L2 norm (at least eps). Written out: ops.L2Normalize's CPU gradient kernel
    takes seconds per step even for an (8, 2048) input, this takes milliseconds."""
    return x / ops.sqrt(ops.clamp(ops.sum(x * x, 1, keepdim=True), min=eps * eps))


def freeze_except(model: nn.Cell, prefixes: Sequence[str] = ("layer4.", "fc.")) -> list[Parameter]:
    """Fine-tuning: stop gradients to every parameter whose name starts with none of `prefixes` (default: all but
    the last stage and the classifier, as resnet3d's fine-tuning does); returns the parameters left trainable."""
    for param in model.get_parameters():
        if param.requires_grad and not param.name.startswith(tuple(prefixes)):
            param.requires_grad = False
    trainable = model.trainable_params()
    if not trainable:
        raise ValueError(f"no parameter name starts with any of {list(prefixes)}")
    return trainable


def _build_stem(
    kind: str,
    dims: int,
    in_ch: int,
    width: int,
    stride: int | tuple[int, ...],
    norm: NormConfig,
    size: tuple[int, ...],
    conv_same: bool = False,
    pool_same: bool = False,
) -> tuple[nn.Cell, tuple[int, ...]]:
    """'plain': 7x7 conv (stride) -> BN -> ReLU -> 3x3/2 max pool. 'deep' (ResNet-C/D): three 3x3 convs
    in -> w/2 (stride 2) -> w/2 -> w, each with BN + ReLU, then the max pool. Returns the stem and its output size."""
    if kind == "plain":
        cells = [
            conv_nd(dims, in_ch, width, 7, stride=stride, padding=3, same=conv_same),
            batch_norm_nd(dims, width, norm),
            nn.ReLU(),
        ]
        size = same_out_size(size, stride) if conv_same else conv_out_size(size, 7, stride, 3)
    elif kind == "deep":
        half = width // 2
        cells = []
        for i, (cin, cout) in enumerate([(in_ch, half), (half, half), (half, width)]):
            s = stride if i == 0 else 1
            cells += [
                conv_nd(dims, cin, cout, 3, stride=s, same=conv_same),
                batch_norm_nd(dims, cout, norm),
                nn.ReLU(),
            ]
            size = same_out_size(size, s) if conv_same else conv_out_size(size, 3, s, 1)
    else:
        raise ValueError(f"stem must be 'plain' or 'deep', got {kind!r}")
    cells.append(max_pool_nd(dims, 3, 2, 1, same=pool_same))
    return nn.SequentialCell(cells), same_out_size(size, 2) if pool_same else conv_out_size(size, 3, 2, 1)
