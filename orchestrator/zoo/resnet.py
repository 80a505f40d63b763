"""Pre-activation ResNet for CIFAR (He et al. 2016, "Identity Mappings", arXiv 1603.05027).

Depth 6n+2 with basic blocks, as in the seed (4_Residual_Network/ResNet_keras.py):
stem Conv3x3 16 (no BN/ReLU); three stages of n blocks with 16/32/64 filters at strides
1/2/2; block = BN-ReLU (o1) -> Conv3x3 -> BN-ReLU -> Conv3x3, plus the shortcut, nothing
after the add. The first block of stages 2 and 3 projects with Conv1x1(stride 2) applied to
o1 (the pre-activated input); every other shortcut is the identity. Head BN-ReLU-GAP-Dense.
Convs and the dense use bias, he_normal and L2 1e-4; BN momentum 0.9, epsilon 1e-5.
"resnet50" is the seed's htd/ 6n+2 net with n=8 (basic blocks), not ImageNet ResNet-50.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from orchestrator.zoo.backend import Backend
from orchestrator.zoo.base import TORCH_BN, Family, depth_rule, typed
from orchestrator.zoo.blocks import preact_block, preact_head, stages


def resnet(ly: Backend, x: Any, *, depth: int = 20, base_filters: int = 16) -> Any:
    """Pre-activation ResNet-`depth` (6n+2): `x` -> class probabilities (float32)."""
    x = ly.conv(x, base_filters, 3, "stem_conv", use_bias=True)
    block = partial(preact_block, use_bias=True, project=False)
    x = stages(ly, x, [base_filters * 2**stage for stage in range(3)], (depth - 2) // 6, block)
    return preact_head(ly, x)


FAMILY = Family(
    "pre-activation ResNet (v2) for CIFAR, depth 6n+2, basic blocks",
    resnet,
    {"weight_decay": 1e-4, "kernel_initializer": "he_normal", **TORCH_BN},
    (typed(base_filters=int), depth_rule(6, 2, "20, 32, 44, 56, 110")),
)

_PAPER = "He et al. 2016 (arXiv 1512.03385) Table 6"
_README = "BIGBALLON/cifar-10-cnn README"


def _preset(depth: int, params: int, macs: int, published: tuple[str, str] | None) -> Any:
    description = f"pre-activation ResNet-{depth} (6n+2, n={(depth - 2) // 6}), L2 1e-4"
    return FAMILY.preset(f"resnet{depth}", description, (params, macs), published, depth=depth)


PRESETS = (
    _preset(20, 274_442, 40_813_184, ("0.27M", f"{_PAPER}; {_README} (Residual-Network20)")),
    _preset(32, 470_218, 69_124_736, ("0.47M", f"{_README} (Residual-Network32); paper 0.46M")),
    _preset(44, 665_994, 97_436_288, ("0.66M", _PAPER)),
    # The README row "Residual-Network50 1.7M" is a typo (it is ResNet-110's count); the
    # seed's htd/ ResNet-50 (n=8) has 0.76M and no published count.
    _preset(50, 763_882, 111_592_064, None),
    _preset(56, 861_770, 125_747_840, ("0.85M", _PAPER)),
    _preset(110, 1_742_762, 253_149_824, ("1.7M", f"{_PAPER}; {_README} (Residual-Network110)")),
)
