"""`orch models [PATTERN]`: the zoo's presets, their size and cost, without building them.

Everything shown comes from the preset constants, so this command imports no TensorFlow.
"""

from __future__ import annotations

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table

from orchestrator.cli.text import safe
from orchestrator.errors import UnknownModelError, did_you_mean
from orchestrator.zoo import get_preset, list_families, list_models


def human(count: int) -> str:
    """1_742_762 -> '1.74M', 62_006 -> '62.0k', 2_834_161_664 -> '2.83G'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= scale:
            return (
                f"{count / scale:.3g}{suffix}"
                if count < 100 * scale
                else f"{count / scale:.0f}{suffix}"
            )
    return str(count)


def models_table(pattern: str = "*") -> Table:
    """A rich table of the presets whose names match the shell-style `pattern`."""
    table = Table(
        title=f"orch model zoo ({safe(pattern)})",
        title_justify="left",
        caption=(
            "params: model.count_params() (BN statistics included); MACs: multiply-adds per "
            "image at the default input. Families accept their arguments too: "
            + ", ".join(list_families())
        ),
        caption_justify="left",
    )
    for column in ("name", "family", "input", "params", "MACs", "published", "source"):
        justify: JustifyMethod = "right" if column in ("params", "MACs", "published") else "left"
        table.add_column(column, justify=justify, overflow="fold")
    for name in list_models(pattern):
        info = get_preset(name)
        shape = "x".join(str(d) for d in info.default_input_shape)
        table.add_row(
            name,
            info.family,
            f"{shape}, {info.default_num_classes} cl.",
            f"{info.params:,}",
            human(info.macs),
            info.published_label or "-",
            info.published_source or "-",
        )
    return table


def models(
    pattern: str = typer.Argument(
        "*", help="Shell-style pattern on preset names, e.g. 'resnet*' or '*densenet_bc*'."
    ),
) -> None:
    """List the model presets: params, MACs per image, published params and their source."""
    if not list_models(pattern):
        presets = list_models()
        error = UnknownModelError(pattern, presets)  # exits 2 with one line, as user errors do
        error.args = (
            f"no preset matches {pattern!r}.{did_you_mean(pattern, presets)} "
            "Run `orch models` to list them all.",
        )
        raise error
    Console().print(models_table(pattern))
