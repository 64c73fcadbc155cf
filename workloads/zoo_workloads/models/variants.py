"""The registered models: each is the shared ResNet trunk plus hooks, a few lines per model."""

from __future__ import annotations

from mindspore import nn

from zoo_workloads.models.layers.bam import BAM
from zoo_workloads.models.layers.common import NormConfig
from zoo_workloads.models.layers.gather_excite import GatherExcite
from zoo_workloads.models.layers.gem import GeM
from zoo_workloads.models.layers.glore import GloreUnit
from zoo_workloads.models.registry import ModelSpec, register_model
from zoo_workloads.models.resnet import BlockSite, ResNet, at_positions, scale_positions

RESNET50 = [3, 4, 6, 3]
RESNET200 = [3, 24, 36, 3]
# The glore reference builds every BatchNorm with eps 1e-4.
GLORE_NORM = NormConfig(eps=1e-4)


def _glore(site: BlockSite) -> nn.Cell:
    # num_mid = C / 4: 1024 -> 256 nodes (512 states) in Res4, 512 -> 128 in Res3 of ResNet-200.
    return GloreUnit(site.channels, site.channels // 4, site.norm)


@register_model(
    ModelSpec(
        "glore_res50",
        "image",
        (3, 224, 224),
        "logits",
        "arXiv:1811.12814",
        "ResNet-50-D (deep stem, avg-pool shortcut) with 3 GloRe units in layer3",
    )
)
def glore_res50(num_classes: int, *, image_size: int, width: int, layers: list[int] | None) -> nn.Cell:
    """GloRe units after residual blocks 1, 3 and 5 (1-indexed) of layer3 (1024 channels, 14x14 at 224 px)."""
    layers = layers or RESNET50
    return ResNet(
        num_classes,
        layers=layers,
        width=width,
        input_size=(image_size, image_size),
        stem="deep",
        shortcut="avgdown",
        norm=GLORE_NORM,
        zero_init_last=True,
        conv_same=True,
        pool_same=True,
        insert_after_block=at_positions(_glore, scale_positions({2: [0, 2, 4]}, RESNET50, layers)),
    )


@register_model(
    ModelSpec(
        "glore_res200",
        "image",
        (3, 224, 224),
        "logits",
        "arXiv:1811.12814",
        "pre-activation ResNet-200 with 2 GloRe units in Res3 and 3 in Res4",
    )
)
def glore_res200(num_classes: int, *, image_size: int, width: int, layers: list[int] | None) -> nn.Cell:
    """Units after blocks 12, 18 of Res3 (layer2) and 16, 24, 32 of Res4 (layer3), read as 1-indexed (inf)."""
    layers = layers or RESNET200
    return ResNet(
        num_classes,
        layers=layers,
        width=width,
        input_size=(image_size, image_size),
        block="preact",
        norm=GLORE_NORM,
        pool_same=True,  # the reference's stem MaxPool2d(pad_mode="same")
        insert_after_block=at_positions(
            _glore, scale_positions({1: [11, 17], 2: [15, 23, 31]}, RESNET200, layers)
        ),
    )


@register_model(
    ModelSpec(
        "resnet50_bam",
        "image",
        (3, 224, 224),
        "logits",
        "arXiv:1807.06514",
        "ResNet-50 with a BAM module after layer1, layer2 and layer3",
    )
)
def resnet50_bam(num_classes: int, *, image_size: int, width: int, layers: list[int] | None) -> nn.Cell:
    """BAM (r = 16) at the three bottlenecks between stages; none after layer4."""

    def bam(site: BlockSite) -> nn.Cell | None:
        return BAM(site.channels, 16, site.norm) if site.stage < 3 else None

    return ResNet(
        num_classes,
        layers=layers or RESNET50,
        width=width,
        input_size=(image_size, image_size),
        insert_after_stage=bam,
        pool_same=True,
    )


@register_model(
    ModelSpec(
        "genet_res50",
        "image",
        (3, 224, 224),
        "logits",
        "arXiv:1810.12348",
        "ResNet-50 with global-extent gather-excite in every bottleneck (GE-theta-minus/theta/theta-plus)",
        hparam_keys=("ge_extra", "ge_mlp"),
    )
)
def genet_res50(
    num_classes: int,
    *,
    image_size: int,
    width: int,
    layers: list[int] | None,
    ge_extra: bool = True,
    ge_mlp: bool = True,
) -> nn.Cell:
    """ge_extra/ge_mlp: (False, *) GE-theta-minus, (True, False) GE-theta, (True, True) GE-theta-plus."""

    def ge(site: BlockSite) -> nn.Cell:
        return GatherExcite(
            site.channels,
            (site.feat_size[0], site.feat_size[1]),
            extra=bool(ge_extra),
            mlp=bool(ge_mlp),
            pre_downsample=site.stage == 0,
            norm=site.norm,
            same=site.same,
        )

    # The reference's stem BN has eps 1e-4 (its _bn), the blocks' Conv2dBnAct BNs MindSpore's default 1e-5.
    return ResNet(
        num_classes,
        layers=layers or RESNET50,
        width=width,
        input_size=(image_size, image_size),
        block_attn=ge,
        conv_same=True,
        pool_same=True,
        stem_norm=NormConfig(eps=1e-4),
    )


@register_model(
    ModelSpec(
        "multigrain",
        "image",
        (3, 224, 224),
        "logits+embedding",
        "arXiv:1902.05509",
        "ResNet-50 with GeM pooling; returns (logits, L2-normalised 2048-d embedding)",
        hparam_keys=("gem_p",),
    )
)
def multigrain(
    num_classes: int, *, image_size: int, width: int, layers: list[int] | None, gem_p: float = 3.0
) -> nn.Cell:
    """GeM (p fixed, default 3) replaces the average pool; the pooled vector is also the embedding."""
    return ResNet(
        num_classes,
        layers=layers or RESNET50,
        width=width,
        input_size=(image_size, image_size),
        pool=lambda channels, dims: GeM(float(gem_p), dims=dims),
        return_embedding=True,
        # as the ModelZoo's official ResNet-50 (the pretrained start, models/modelzoo.py): pad_mode='same' convs
        # and stem pool, every BatchNorm eps 1e-4; the same function, so its ImageNet weights mean what they did
        norm=NormConfig(eps=1e-4),
        conv_same=True,
        pool_same=True,
    )


@register_model(
    ModelSpec(
        "resnet3d",
        "video",
        (3, 16, 112, 112),
        "logits",
        "arXiv:2004.04968",
        "3D ResNet-50 (7x7x7 stem, 3x3x3 bottlenecks, shortcut B) on 16-frame clips",
        hparam_keys=("clip_length",),
    )
)
def resnet3d(
    num_classes: int, *, image_size: int, width: int, layers: list[int] | None, clip_length: int = 16
) -> nn.Cell:
    """Input (N, 3, clip_length, image_size, image_size); conv1 stride (1, 2, 2), then the 3x3x3/2 max pool."""
    if not isinstance(clip_length, int) or clip_length < 1:
        raise ValueError(f"clip_length must be a positive integer, got {clip_length!r}")
    return ResNet(
        num_classes,
        layers=layers or RESNET50,
        width=width,
        input_size=(clip_length, image_size, image_size),
        stem_stride=(1, 2, 2),
        zero_init_last=True,
        pool_same=True,
    )
