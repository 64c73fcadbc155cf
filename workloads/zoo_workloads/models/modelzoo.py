"""Checkpoint compatibility with the MindSpore ModelZoo's own networks (mindspore-ai/models, research/cv).

One shared trunk builds every model here, and the reference networks name the same layers each their own way
(`conv1`/`bn1` vs a Sequential `stem`, `fc` vs `end_point`, `downsample` vs `down_sample_layer` vs
`down_layer.conv`, BAM as `bam1` vs a cell inside layer1, ...). So instead of per-model naming hooks all through the trunk
we keep, per model, an ordered table of regex rewrites from our parameter names to the reference's (data below;
glore_res200's cell numbers need a count, so one replacement there is a function),
checked against a manifest of every reference parameter (tests/unit/golden/modelzoo/<model>.json, written by
benchmarks/modelzoo_equivalence.py from the reference code). The table is a bijection on each model's names:
a checkpoint in the reference layout is renamed to ours on load, and `to_reference` writes ours in the
reference's layout for its eval.py.

Covered: glore_res50 (research/cv/glore_res), resnet50_bam (research/cv/resnet50_bam), genet_res50
(research/cv/GENet_Res50), resnet3d (research/cv/resnet3d), glore_res200 (research/cv/glore_res, ResNet_200; at its
default depth only) and multigrain's ResNet-50 backbone (official/cv/ResNet: the ModelZoo has no multigrain code).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_BN = r"(gamma|beta|moving_mean|moving_variance)"

# glore_res200's reference (glore_resnet.py ResNet_200) names its stages layer2..layer5 and their cells
# Residual_Unit<n> (1-based) with each GloRe unit as Residual_Unit<n>_GloreUnit after block n; ours number the
# stage's cells 0.. in one sequence, so the name needs the count, not a regex. Units after blocks 12, 18 of our
# layer2 and 16, 24, 32 of layer3: the default depth (3, 24, 36, 3), the one the reference builds.
_GLORE200_UNITS = {2: (12, 18), 3: (16, 24, 32)}


def _glore200_cell(match: re.Match[str]) -> str:
    stage, index = int(match[1]), int(match[2])
    cells: list[str] = []
    block = 0
    while len(cells) <= index:
        block += 1
        cells.append(f"Residual_Unit{block}")
        if block in _GLORE200_UNITS.get(stage, ()):
            cells.append(f"Residual_Unit{block}_GloreUnit")
    return f"layer{stage + 1}.{cells[index]}."


Rule = tuple[str, str | Callable[[re.Match[str]], str]]

# Ours -> reference, applied in order, each rule to the result of the previous ones.
RULES: dict[str, list[Rule]] = {
    "resnet50_bam": [
        (r"^stem\.0\.", "conv1."),
        (r"^stem\.1\.", "bn1."),
        (r"^layer(\d)\.\d+\.channel_gate\.fc1\.", r"bam\1.channel_att.gate_c.1."),
        (r"^layer(\d)\.\d+\.channel_gate\.bn\.", r"bam\1.channel_att.gate_c.2."),
        (r"^layer(\d)\.\d+\.channel_gate\.fc2\.", r"bam\1.channel_att.gate_c.4."),
        (r"^layer(\d)\.\d+\.spatial_gate\.body\.", r"bam\1.spatial_att.gate_s."),
        (r"\.shortcut\.", ".downsample."),
    ],
    "genet_res50": [
        (r"^stem\.0\.", "conv1."),
        (r"^stem\.1\.", "bn1."),
        (r"\.conv([123])\.weight$", r".conv\1.conv.weight"),
        (rf"\.bn([123])\.{_BN}$", r".conv\1.batchnorm.\2"),
        (r"\.shortcut\.0\.", ".down_layer.conv."),
        (r"\.shortcut\.1\.", ".down_layer.batchnorm."),
        (r"\.attn\.gather\.body\.", ".downop."),
        (r"\.attn\.excite\.", ".mlpLayer."),
        (r"^fc\.", "end_point."),
    ],
    "glore_res50": [
        (r"^stem\.0\.", "conv1.conv_1."),
        (r"^stem\.1\.", "conv1.bn1."),
        (r"^stem\.3\.", "conv1.conv_2."),
        (r"^stem\.4\.", "conv1.bn2."),
        (r"^stem\.6\.", "conv1.conv_3."),
        (r"^stem\.7\.", "bn1."),
        (r"\.shortcut\.", ".down_sample_layer."),
        (r"\.gcn\.conv_node\.", ".gcn.conv1."),
        (r"\.gcn\.conv_state\.", ".gcn.conv2."),
        (r"^fc\.", "end_point."),
    ],
    # MindSpore's nn.BatchNorm3d names its parameters <bn>.bn2d.*, as the reference's own BatchNorm3d does.
    "resnet3d": [
        (r"^stem\.0\.", "conv1."),
        (r"^stem\.1\.", "bn1."),
        (r"\.shortcut\.", ".downsample."),
    ],
    "glore_res200": [
        (r"^stem\.0\.", "layer1.conv."),
        (r"^stem\.1\.", "layer1.bn."),
        (r"\.bn([123])\.", r".BN_AC_Conv\1.bn."),
        (r"\.conv([123])\.", r".BN_AC_Conv\1.conv."),
        (r"\.shortcut\.", ".BN_AC_Conv_w."),
        (r"\.gcn\.conv_node\.", ".gcn.conv1."),
        (r"\.gcn\.conv_state\.", ".gcn.conv2."),
        (r"^layer(\d)\.(\d+)\.", _glore200_cell),
        (r"^final_act\.0\.", "tail.bn."),
        (r"^fc\.", "classifier."),
    ],
    # multigrain has no ModelZoo network; its backbone is a ResNet-50, so the reference is the ModelZoo's official
    # ResNet-50 (official/cv/ResNet, src/resnet.py resnet50), whose ImageNet .ckpt is the usual pretrained start.
    # Every backbone parameter maps; its end_point is a 1001-class ImageNet classifier, so `pretrained` keeps
    # multigrain's fc fresh (GeM has no parameter: p is fixed). The authors' PyTorch names are not a table here:
    # a .pth needs torch to read (docs/models.md).
    "multigrain": [
        (r"^stem\.0\.", "conv1."),
        (r"^stem\.1\.", "bn1."),
        (r"\.shortcut\.", ".down_sample_layer."),
        (r"^fc\.", "end_point."),
    ],
}


def covered(model: str) -> bool:
    """Whether the model has a ModelZoo name table."""
    return model in RULES


def reference_name(model: str, name: str) -> str:
    """The reference network's name for one of our parameter names."""
    for pattern, repl in RULES[model]:
        name = re.sub(pattern, repl, name)
    return name


def reference_names(model: str, names: Iterable[str]) -> dict[str, str]:
    """{our name: reference name}; ValueError if two of ours map onto one reference name."""
    table = {name: reference_name(model, name) for name in names}
    if len(set(table.values())) != len(table):
        seen: dict[str, str] = {}
        clashes = [
            f"{a} and {seen.setdefault(b, a)} -> {b}" for a, b in table.items() if seen.setdefault(b, a) != a
        ]
        raise ValueError(f"{model}: name table is not one-to-one: {clashes[:3]}")
    return table


def to_reference(model: str, data: Mapping[str, Any], own_names: Iterable[str]) -> dict[str, Any]:
    """A parameter dict of ours with the network's entries renamed to the reference's (others kept as they are)."""
    table = reference_names(model, own_names)
    return {table.get(key, key): value for key, value in data.items()}


def from_reference(model: str, data: Mapping[str, Any], own_names: Iterable[str]) -> dict[str, Any]:
    """A checkpoint dict in the reference's layout renamed to ours; entries that are not the reference network's
    (optimizer state such as moments.*, global_step) are kept under their own name, renamed when the rest of the
    name is a network parameter (moments.conv1.weight -> moments.stem.0.weight)."""
    inverse = {ref: ours for ours, ref in reference_names(model, own_names).items()}
    renamed: dict[str, Any] = {}
    for key, value in data.items():
        prefix, _, rest = key.partition(".")
        if key in inverse:
            renamed[inverse[key]] = value
        elif rest in inverse:
            renamed[f"{prefix}.{inverse[rest]}"] = value
        else:
            renamed[key] = value
    return renamed


def is_reference_layout(model: str, data: Mapping[str, Any], own_names: Iterable[str]) -> bool:
    """True when a checkpoint names the network the reference's way (more reference-only names than ours)."""
    if not covered(model):
        return False
    table = reference_names(model, own_names)
    ours = sum(1 for name in table if name in data and table[name] != name)
    theirs = sum(1 for name, ref in table.items() if ref != name and ref in data)
    return theirs > ours


def match_network(data: Mapping[str, Any], own: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Problems loading `data` (name -> tensor with .shape) into a network whose parameters are `own`
    (name -> shape): each missing parameter and each shape mismatch, one line each; [] when everything matches.
    Entries of data that are not parameters (optimizer state, epoch, ...) are not problems."""
    problems = []
    for name, shape in own.items():
        if name not in data:
            problems.append(f"missing {name} {list(shape)}")
        elif tuple(data[name].shape) != tuple(shape):
            problems.append(f"shape of {name}: checkpoint {list(data[name].shape)}, model {list(shape)}")
    return problems


def describe_problems(path: str, model: str, problems: list[str], extra: list[str]) -> str:
    """One error message naming what did not match (the first 20 of each kind and the counts)."""
    head = f"checkpoint {path} does not fit model {model}: {len(problems)} parameters do not match"
    lines = [head, *problems[:20]]
    if len(problems) > 20:
        lines.append(f"... and {len(problems) - 20} more")
    if extra:
        lines.append(
            f"{len(extra)} checkpoint entries are no parameter of the model, e.g. {', '.join(extra[:8])}"
        )
    return "\n  ".join(lines)
