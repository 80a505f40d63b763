"""DenseNet and DenseNet-BC (Huang et al. 2017, arXiv 1608.06993), CIFAR and ImageNet.

CIFAR (stem="cifar"): Conv3x3 stem (16 channels, or 2k for bottleneck nets; no BN), three
dense blocks of (depth-4)/3 layers ((depth-4)/6 with bottlenecks) and a transition after
each block but the last. ImageNet (stem="imagenet"): Conv7x7 s2 -> BN -> ReLU -> MaxPool 3x3
s2, four blocks (121/161/169/201 layouts): the params and MACs of keras.applications'
DenseNet121/169/201, layer for layer (explicit zero padding in the stem, as they have),
and BN 0.99 / 1.001e-5 like them in the presets. `weights="imagenet"` loads their ImageNet
weights (zoo/pretrained.py: fetched once, md5-checked): the whole net with 1000 classes,
everything but the classifier otherwise.
Layer: BN-ReLU-[Conv1x1(4k)-BN-ReLU]-Conv3x3(k) -> concatenate([old, new]).
Transition: BN-ReLU-Conv1x1(int(c * compression))-AvgPool 2x2. Head: BN-ReLU-GAP-Dense.
Convs have no bias; he_normal; L2 1e-4 on every conv and dense kernel (the paper decays them
all, unlike titu1994/DenseNet's 3x3 convs); BN 0.9 / 1e-5 as in the seed's DenseNet_keras.py.

seed_variant=True adds the seed's old THIRD transition after the last block (removed from
BIGBALLON/cifar-10-cnn in 330590d): its README counts (0.85M, 3.3M, 7.5M) include it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.zoo.backend import Backend
from orchestrator.zoo.base import (
    IMAGENET_SHAPE,
    TORCH_BN,
    Family,
    ModelInfo,
    check_float,
    check_int,
    received,
    typed,
)
from orchestrator.zoo.blocks import preact_head

# ImageNet layouts (layers per block) by depth, from the paper's Table 1.
IMAGENET_LAYOUTS: dict[int, tuple[int, ...]] = {
    121: (6, 12, 24, 16),
    161: (6, 12, 36, 24),
    169: (6, 12, 32, 32),
    201: (6, 12, 48, 32),
    264: (6, 12, 64, 48),
}
_STEMS = ("cifar", "imagenet")


def densenet(
    ly: Backend,
    x: Any,
    *,
    depth: int | None = None,
    growth_rate: int = 12,
    bottleneck: bool = False,
    compression: float = 1.0,
    num_blocks: int | None = None,
    layers_per_block: int | Sequence[int] | None = None,
    init_filters: int | None = None,
    stem: str = "cifar",
    seed_variant: bool = False,
    weights: str | None = None,
) -> Any:
    """DenseNet(-BC): `x` -> class probabilities (float32).

    depth: total layers; None means 40 (CIFAR) or 121 (ImageNet). CIFAR depths are 3n+4,
    or 6n+4 with `bottleneck`. `layers_per_block` (an int or one count per block) replaces
    the depth rule. `compression` < 1 with `bottleneck` makes DenseNet-BC (paper: 0.5).
    init_filters: stem channels; None means 2 * growth_rate for bottleneck or ImageNet nets,
    16 otherwise (the paper). seed_variant: add the seed's third transition (CIFAR only).
    weights: None, or "imagenet" for densenet121/169/201 (loaded by `create_model` once the
    model exists; the builder itself only describes the layers).
    """
    layout = block_layout(depth, bottleneck, num_blocks, layers_per_block, stem)
    x = _stem(ly, x, _init_filters(init_filters, growth_rate, bottleneck, stem), stem)
    for index, layers in enumerate(layout, start=1):
        for layer in range(1, layers + 1):
            x = _dense_layer(ly, x, growth_rate, bottleneck, f"block{index}_layer{layer}")
        if index < len(layout) or seed_variant:
            x = _transition(ly, x, int(x.shape[-1] * compression), f"transition{index}")
    return preact_head(ly, x)


def _stem(ly: Backend, x: Any, filters: int, stem: str) -> Any:
    if stem == "cifar":
        return ly.conv(x, filters, 3, "stem_conv")
    # Explicit zero padding then 'valid', as keras.applications does: the same shapes as
    # 'same', but 'same' pads 2 before / 3 after at stride 2, a shifted window, so
    # ImageNet weights would give other outputs.
    x = ly.zero_pad(x, 3, "stem_pad")
    x = ly.conv(x, filters, 7, "stem_conv", strides=2, padding="valid")
    x = ly.bn_relu(x, "stem")
    x = ly.zero_pad(x, 1, "stem_pool_pad")
    return ly.max_pool(x, 3, "stem_pool", strides=2, padding="valid")


def _dense_layer(ly: Backend, x: Any, growth_rate: int, bottleneck: bool, name: str) -> Any:
    y = ly.relu(ly.bn(x, f"{name}_bn1"), f"{name}_relu1")
    if bottleneck:
        y = ly.dropout(ly.conv(y, 4 * growth_rate, 1, f"{name}_conv1"), f"{name}_drop1")
        y = ly.relu(ly.bn(y, f"{name}_bn2"), f"{name}_relu2")
    y = ly.dropout(ly.conv(y, growth_rate, 3, f"{name}_conv2"), f"{name}_drop2")
    return ly.concat([x, y], f"{name}_concat")


def _transition(ly: Backend, x: Any, filters: int, name: str) -> Any:
    x = ly.bn_relu(x, name)
    x = ly.dropout(ly.conv(x, filters, 1, f"{name}_conv"), f"{name}_drop")
    return ly.avg_pool(x, 2, f"{name}_pool", strides=2)


def _init_filters(init_filters: int | None, growth_rate: int, bottleneck: bool, stem: str) -> int:
    if init_filters is not None:
        return init_filters
    return 2 * growth_rate if bottleneck or stem == "imagenet" else 16


def block_layout(
    depth: int | None,
    bottleneck: bool,
    num_blocks: int | None,
    layers_per_block: int | Sequence[int] | None,
    stem: str,
) -> tuple[int, ...]:
    """Layers per dense block. Raises ValueError("arg|rule") when the arguments disagree."""
    blocks = num_blocks or (3 if stem == "cifar" else 4)
    per_layer = 2 if bottleneck else 1  # a bottleneck layer holds two convs
    if layers_per_block is not None:
        layout = _explicit_layout(layers_per_block, blocks, num_blocks)
        implied = sum(layout) * per_layer + len(layout) + 1
        if depth is not None and depth != implied:
            raise ValueError(f"depth|must match layers_per_block, which implies depth={implied}")
        return layout
    if depth is None:
        depth = 40 if stem == "cifar" else 121
    if stem == "imagenet" and bottleneck and blocks == 4 and depth in IMAGENET_LAYOUTS:
        return IMAGENET_LAYOUTS[depth]
    step = blocks * per_layer
    if depth < step + blocks + 1 or (depth - blocks - 1) % step:
        form = f"{step}n+{blocks + 1}"
        kind = "a bottleneck DenseNet" if bottleneck else "a DenseNet without bottleneck"
        raise ValueError(f"depth|must be {form} for {kind} with {blocks} blocks")
    return (((depth - blocks - 1) // step),) * blocks


def _explicit_layout(
    layers_per_block: int | Sequence[int], blocks: int, num_blocks: int | None
) -> tuple[int, ...]:
    if isinstance(layers_per_block, int) and not isinstance(layers_per_block, bool):
        layout: tuple[Any, ...] = (layers_per_block,) * blocks
    elif isinstance(layers_per_block, Sequence) and not isinstance(layers_per_block, str):
        layout = tuple(layers_per_block)
        if num_blocks is not None and len(layout) != num_blocks:
            raise ValueError(f"layers_per_block|must have num_blocks={num_blocks} entries")
    else:
        layout = ()
    if not layout or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in layout
    ):
        raise ValueError("layers_per_block|must be an integer >= 1 or a list of them")
    return layout


_TYPED = typed(growth_rate=int, bottleneck=bool)


def _rules(model: str, kwargs: Mapping[str, Any], input_shape: Any) -> list[str]:
    problems = _TYPED(model, kwargs, input_shape)
    problems += check_float(model, "compression", kwargs["compression"], 0.0, 1.0, high_open=False)
    if kwargs["compression"] == 0:
        problems.append(received(model, "compression", "must be in (0, 1]", 0))
    for arg in ("depth", "num_blocks", "init_filters"):
        if kwargs[arg] is not None:
            problems += check_int(model, arg, kwargs[arg])
    stem = kwargs["stem"]
    if stem not in _STEMS:
        problems.append(received(model, "stem", "must be 'cifar' or 'imagenet'", stem))
    elif kwargs["seed_variant"] is True and stem != "cifar":
        rule = "only applies to the CIFAR DenseNets (stem='cifar'); leave it False"
        problems.append(received(model, "seed_variant", rule, True))
    problems += _check_weights(model, input_shape, kwargs)
    if problems:  # the layout rules below need well-typed arguments
        return problems
    try:
        layout = block_layout(
            kwargs["depth"],
            kwargs["bottleneck"],
            kwargs["num_blocks"],
            kwargs["layers_per_block"],
            stem,
        )
    except ValueError as err:
        arg, rule = str(err).split("|")
        return [received(model, arg, rule, kwargs[arg])]
    return _check_transitions(model, layout, kwargs)


def _check_weights(
    model: str, input_shape: tuple[int, ...] | None, kwargs: Mapping[str, Any]
) -> list[str]:
    """weights="imagenet" only where keras.applications' weights fit the layers exactly."""
    weights = kwargs.get("weights")
    if weights is None:
        return []
    if weights != "imagenet":
        return [received(model, "weights", "must be None or 'imagenet'", weights)]
    from orchestrator.zoo.pretrained import IMAGENET_DEPTHS

    standard = {
        "growth_rate": 32,
        "bottleneck": True,
        "compression": 0.5,
        "stem": "imagenet",
        "num_blocks": None,
        "layers_per_block": None,
        "init_filters": None,
        "seed_variant": False,
    }
    same = all(kwargs.get(k) == v for k, v in standard.items())
    if not same or kwargs.get("depth") not in IMAGENET_DEPTHS:
        rule = "exist only for densenet121, densenet169 and densenet201 as preset"
        return [received(model, "weights", rule, weights)]
    if input_shape is not None and input_shape[-1] != 3:
        rule = "need 3-channel (RGB) input"
        return [received(model, "weights", rule, weights)]
    return []


def _check_transitions(model: str, layout: tuple[int, ...], kwargs: Mapping[str, Any]) -> list[str]:
    """A transition must keep at least one channel: int(channels * compression) >= 1."""
    k, compression = kwargs["growth_rate"], kwargs["compression"]
    channels = _init_filters(kwargs["init_filters"], k, kwargs["bottleneck"], kwargs["stem"])
    for index, layers in enumerate(layout, start=1):
        channels += layers * k
        if index < len(layout) or kwargs["seed_variant"]:
            channels = int(channels * compression)
            if channels < 1:
                rule = f"leaves transition {index} with no channels; use a larger value"
                return [received(model, "compression", rule, compression)]
    return []


FAMILY = Family(
    "DenseNet / DenseNet-BC, CIFAR (3 blocks) or ImageNet (7x7 stem, 4 blocks)",
    densenet,
    {"weight_decay": 1e-4, "kernel_initializer": "he_normal", **TORCH_BN, "dropout": 0.0},
    (_rules,),
)

_PAPER = "Huang et al. 2017 (arXiv 1608.06993) Table 2"
_SEED = "BIGBALLON/cifar-10-cnn README"


def _cifar(
    depth: int, k: int, bc: bool, counts: tuple[int, int], published: Any, note: str = ""
) -> ModelInfo:
    kind = "DenseNet-BC" if bc else "DenseNet"
    kwargs: dict[str, Any] = {"depth": depth, "growth_rate": k}
    if bc:
        kwargs.update(bottleneck=True, compression=0.5)
    name = f"densenet_{'bc_' if bc else ''}{depth}_{k}"
    return FAMILY.preset(
        name, f"{kind} (L={depth}, k={k}) for CIFAR{note}", counts, published, **kwargs
    )


def _imagenet(depth: int, k: int, counts: tuple[int, int], label: str) -> ModelInfo:
    source = "Huang et al. 2017 (arXiv 1608.06993) Table 1; torchvision"
    info = FAMILY.preset(
        f"densenet{depth}",
        f"DenseNet-{depth} (k={k}) for ImageNet, as keras.applications",
        counts,
        (label, source),
        depth=depth,
        growth_rate=k,
        bottleneck=True,
        compression=0.5,
        stem="imagenet",
        bn_momentum=0.99,
        bn_epsilon=1.001e-5,
    )
    return dataclasses.replace(info, default_input_shape=IMAGENET_SHAPE, default_num_classes=1000)


_THIRD = "; the seed README's {} counts its old third transition (seed_variant=True)"

PRESETS = (
    _cifar(40, 12, False, (1_037_818, 264_812_928), ("1.0M", _PAPER)),
    _cifar(100, 12, False, (7_096_858, 1_769_516_448), ("7.0M", _PAPER)),
    _cifar(100, 24, False, (27_480_346, 6_889_347_744), ("27.2M", _PAPER)),
    _cifar(
        100,
        12,
        True,
        (793_150, 287_929_692),
        ("0.8M", f"{_PAPER}; {_SEED} 0.85M with seed_variant"),
    ),
    _cifar(100, 24, True, (3_068_482, 1_150_384_824), None, _THIRD.format("3.3M")),
    _cifar(
        160, 24, True, (6_943_642, 2_495_556_384), None, _THIRD.format("7.5M (DenseNet-160x24)")
    ),
    _cifar(250, 24, True, (15_582_382, 5_418_785_724), ("15.3M", _PAPER)),
    _cifar(190, 40, True, (25_881_390, 9_301_945_740), ("25.6M", _PAPER)),
    _imagenet(121, 32, (8_062_504, 2_834_161_664), "7.98M"),
    _imagenet(161, 48, (28_900_936, 7_727_907_072), "28.68M"),
    _imagenet(169, 32, (14_307_880, 3_359_843_328), "14.15M"),
    _imagenet(201, 32, (20_242_984, 4_291_365_888), "20.01M"),
)
