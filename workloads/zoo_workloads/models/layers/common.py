"""Dimension-generic building blocks (2D images, 3D clips) shared by the trunk and the layer modules.

Every conv is bias-free unless asked (the zoo's convention), initialised with He-normal (fan_out, ReLU) as the
reference ResNets do, and every BatchNorm takes MindSpore's momentum convention: moving = m * moving +
(1 - m) * batch, so m = 0.9 here is PyTorch's 0.1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mindspore import nn
from mindspore.common.initializer import HeNormal

IntOrTuple = int | tuple[int, ...]


@dataclass(frozen=True)
class NormConfig:
    """BatchNorm settings of one model: eps and momentum (MindSpore convention: 0.9 == PyTorch's 0.1)."""

    eps: float = 1e-5
    momentum: float = 0.9


DEFAULT_NORM = NormConfig()


def _tuple(value: IntOrTuple, dims: int) -> tuple[int, ...]:
    return value if isinstance(value, tuple) else (value,) * dims


def conv_nd(
    dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    *,
    stride: IntOrTuple = 1,
    padding: int | None = None,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = False,
    same: bool = False,
) -> nn.Cell:
    """A 2D or 3D convolution with explicit (PyTorch-style) symmetric padding; default keeps 'same' size at stride 1.

    same=True: MindSpore's pad_mode='same' instead, for the layers where the ModelZoo reference uses it. At stride
    1 with an odd kernel that is the same symmetric padding; at stride 2 it pads the total (k - s) or (k - 1)
    with the extra pixel at the bottom/right, which samples a grid shifted by one pixel against symmetric padding
    (MindSpore nn.Conv2d docs, pad_mode), so with the same weights the outputs differ.
    """
    kernel = _tuple(kernel_size, dims)
    if same:
        padding = 0
    elif padding is None:
        padding = dilation * (max(kernel) - 1) // 2
    conv_cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    stride_arg = _tuple(stride, dims) if dims > 1 else stride
    kernel_arg = kernel if dims > 1 else kernel[0]
    return conv_cls(
        in_channels,
        out_channels,
        kernel_arg,
        stride=stride_arg,
        pad_mode="same" if same else "pad" if padding else "valid",
        padding=padding,
        dilation=dilation,
        group=groups,
        has_bias=bias,
        weight_init=HeNormal(mode="fan_out", nonlinearity="relu"),
    )


def batch_norm_nd(dims: int, channels: int, norm: NormConfig, *, zero_gamma: bool = False) -> nn.Cell:
    """BatchNorm over channels of a (N, C, *spatial) tensor; zero_gamma starts the layer as a zero branch."""
    norm_cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims]
    return norm_cls(
        channels, eps=norm.eps, momentum=norm.momentum, gamma_init="zeros" if zero_gamma else "ones"
    )


def same_out_size(size: Sequence[int], stride: IntOrTuple) -> tuple[int, ...]:
    """Spatial size after a pad_mode='same' conv/pool: ceil(n / s) per axis, whatever the kernel."""
    return ceil_div_size(size, stride)


def max_pool_nd(dims: int, kernel_size: int, stride: int, padding: int, *, same: bool = False) -> nn.Cell:
    """Max pooling with explicit symmetric padding (the stems' 3x3/2, padding 1), or pad_mode='same' (the
    ModelZoo references' stem pool: at stride 2 the extra padding goes bottom/right, see conv_nd)."""
    pool_cls = nn.MaxPool2d if dims == 2 else nn.MaxPool3d
    if same:
        return pool_cls(kernel_size=kernel_size, stride=stride, pad_mode="same")
    return pool_cls(kernel_size=kernel_size, stride=stride, pad_mode="pad", padding=padding)


def avg_down_nd(dims: int, stride: IntOrTuple) -> nn.Cell:
    """ResNet-D shortcut pooling: AvgPool(k = stride, s = stride), ceil mode so odd sizes match the 3x3 path."""
    pool_cls = nn.AvgPool2d if dims == 2 else nn.AvgPool3d
    stride_t = _tuple(stride, dims)
    return pool_cls(
        kernel_size=stride_t,
        stride=stride_t,
        pad_mode="pad",
        padding=0,
        ceil_mode=True,
        count_include_pad=False,
    )


def conv_out_size(
    size: Sequence[int], kernel: IntOrTuple, stride: IntOrTuple, padding: int
) -> tuple[int, ...]:
    """Spatial size after a conv/pool with symmetric padding (floor mode), per axis."""
    dims = len(size)
    k, s = _tuple(kernel, dims), _tuple(stride, dims)
    return tuple((n + 2 * padding - kk) // ss + 1 for n, kk, ss in zip(size, k, s, strict=True))


def ceil_div_size(size: Sequence[int], stride: IntOrTuple) -> tuple[int, ...]:
    """Spatial size after a 3x3 (padding 1) conv of the given stride: ceil(n / s) per axis."""
    s = _tuple(stride, len(size))
    return tuple(math.ceil(n / ss) for n, ss in zip(size, s, strict=True))


def count_params(cell: nn.Cell) -> int:
    """Number of trainable parameters (BatchNorm moving statistics are not trainable, so not counted)."""
    return sum(math.prod(p.shape) for p in cell.trainable_params())
