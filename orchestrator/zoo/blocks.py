"""Architecture pieces several families share, each written once on the layer interface.

Every function takes the layer backend `ly` (zoo/backend.py), so it builds Keras layers or
counts them alike. Layer names are part of the contract: zoo/pretrained.py and the tests
find layers by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.zoo.backend import Backend

Block = Callable[[Backend, Any, int, int, str], Any]  # (ly, x, width, strides, name) -> x


def conv_unit(ly: Backend, x: Any, spec: tuple[int, int], name: str, index: int, bn: bool) -> Any:
    """Conv (filters, kernel; bias, 'same') -> [BN] -> ReLU, as VGG and NiN stack them:
    `{name}_conv{index}`, `{name}_bn{index}`, `{name}_relu{index}`."""
    filters, kernel = spec
    x = ly.conv(x, filters, kernel, f"{name}_conv{index}", use_bias=True)
    if bn:
        x = ly.bn(x, f"{name}_bn{index}")
    return ly.relu(x, f"{name}_relu{index}")


def stages(ly: Backend, x: Any, widths: Sequence[int], blocks: int, block: Block) -> Any:
    """The CIFAR residual body: one stage of `blocks` blocks per width, named
    `stage{s}_block{b}`; the first block of every stage after the first has stride 2."""
    for stage, width in enumerate(widths, start=1):
        for index in range(1, blocks + 1):
            strides = 2 if stage > 1 and index == 1 else 1
            x = block(ly, x, width, strides, f"stage{stage}_block{index}")
    return x


def residual(ly: Backend, x: Any, y: Any, strides: int, name: str, **shortcut: Any) -> Any:
    """`y` + the shortcut of `x`: `x` itself where the block keeps its width and resolution,
    else Conv1x1(stride) `{name}_shortcut` of `source` (default `x`). `shortcut` options:
    source, always (project on every block), use_bias, bn (a BN `{name}_shortcut_bn`)."""
    source, always = shortcut.get("source", x), shortcut.get("always", False)
    if always or strides != 1 or x.shape[-1] != y.shape[-1]:
        use_bias = shortcut.get("use_bias", False)
        x = ly.conv(source, y.shape[-1], 1, f"{name}_shortcut", strides=strides, use_bias=use_bias)
        if shortcut.get("bn", False):
            x = ly.bn(x, f"{name}_shortcut_bn")
    return ly.add([x, y], f"{name}_add")


def preact_block(
    ly: Backend, x: Any, filters: int, strides: int, name: str, *, use_bias: bool, project: bool
) -> Any:
    """The pre-activation basic block (ResNet v2, WRN): BN-ReLU (o1) -> Conv3x3(stride) ->
    BN-ReLU -> [Dropout] -> Conv3x3, plus the shortcut, a projection of o1 where needed
    (on every block with `project`); nothing after the add."""
    pre = ly.bn_relu(x, f"{name}_preact")
    y = ly.conv(pre, filters, 3, f"{name}_conv1", strides=strides, use_bias=use_bias)
    y = ly.dropout(ly.bn_relu(y, f"{name}_mid"), f"{name}_drop")
    y = ly.conv(y, filters, 3, f"{name}_conv2", use_bias=use_bias)
    return residual(ly, x, y, strides, name, source=pre, use_bias=use_bias, always=project)


def preact_head(ly: Backend, x: Any, *, use_bias: bool = True) -> Any:
    """BN-ReLU ('head_bn', 'head_relu') -> global average pooling -> classifier."""
    return ly.classifier(ly.global_pool(ly.bn_relu(x, "head")), use_bias=use_bias)
