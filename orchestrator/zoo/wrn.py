"""Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016, arXiv 1605.07146), as in the seed
(5_Wide_Residual_Network/Wide_ResNet_keras.py).

Stem Conv3x3 16; three stages of n = (depth-4)/6 pre-activation blocks with 16k/32k/64k
filters at strides 1/2/2; block = BN-ReLU (o1) -> Conv3x3 -> BN-ReLU -> [Dropout] -> Conv3x3
+ shortcut. The shortcut is a Conv1x1 (block stride) applied to o1 where the block changes
width or resolution (so the first block of every stage), else the identity. Head BN-ReLU-GAP-
Dense (no bias, as in the seed; GAP equals the seed's 8x8 AvgPool on 32x32 inputs and also
works on other sizes). Convs have no bias; he_normal, L2 5e-4, BN 0.9 / 1e-5, no dropout.

seed_variant=True rebuilds the seed's code before commit 30db1f4 (behind its README's
"11.3M" for WRN-16-8): every block gets a projection shortcut and every conv a bias.
"""

from __future__ import annotations

from typing import Any

from orchestrator.zoo.backend import Backend
from orchestrator.zoo.base import TORCH_BN, Family, depth_rule, typed
from orchestrator.zoo.blocks import preact_block, preact_head, stages


def wrn(
    ly: Backend, x: Any, *, depth: int = 28, width: int = 10, seed_variant: bool = False
) -> Any:
    """WRN-`depth`-`width`: `x` -> class probabilities (float32)."""

    def block(ly: Backend, x: Any, filters: int, strides: int, name: str) -> Any:
        return preact_block(
            ly, x, filters, strides, name, use_bias=seed_variant, project=seed_variant
        )

    x = ly.conv(x, 16, 3, "stem_conv", use_bias=seed_variant)
    x = stages(ly, x, [16 * width * 2**stage for stage in range(3)], (depth - 4) // 6, block)
    return preact_head(ly, x, use_bias=False)


FAMILY = Family(
    "Wide ResNet WRN-depth-width (pre-activation, 6n+4)",
    wrn,
    {"weight_decay": 5e-4, "kernel_initializer": "he_normal", "dropout": 0.0, **TORCH_BN},
    (typed(width=int), depth_rule(6, 4, "10, 16, 22, 28, 40")),
)

_PAPER = "Zagoruyko & Komodakis 2016 (arXiv 1605.07146) Table 4"
_README = "BIGBALLON/cifar-10-cnn README"
# Per preset: what its description and its source add.
_NOTES = {
    (16, 8): ("seed_variant=True: the README's 11.3M", "says 11.3M (seed_variant=True)"),
    (28, 10): ("seed's 95.78% model", "(Wide-resnet 28x10)"),
}


def _preset(depth: int, width: int, counts: tuple[int, int], label: str) -> Any:
    note, source = _NOTES[(depth, width)]
    return FAMILY.preset(
        f"wrn_{depth}_{width}",
        f"WRN-{depth}-{width}, L2 5e-4, no dropout ({note})",
        counts,
        (label, f"{_PAPER}; {_README} {source}"),
        depth=depth,
        width=width,
    )


PRESETS = (
    _preset(16, 8, (10_968_560, 1_548_145_664), "11.0M"),
    _preset(28, 10, (36_497_136, 5_243_328_768), "36.5M"),
)
