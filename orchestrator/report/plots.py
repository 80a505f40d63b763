"""The report's figures as PNG bytes (matplotlib, Agg backend: no display needed).

- accuracy against parameters and against training time: one point per grid cell (mean,
  with the sample std as error bar), the published number as a hollow diamond joined to it;
- learning curves: val_accuracy per epoch, one panel per architecture, one line per run.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.protocol import TrialState
from orchestrator.report.table import Row

VERDICT_COLOURS = {"reproduced": "#2e7d32", "above": "#1565c0", "below": "#e65100", "": "#616161"}
_DPI = 110
_MAX_LABELS = 40  # beyond this many points, labels only clutter
MAX_PANELS = 30  # learning-curve panels: the first grid cells in job order


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "grid.linestyle": "-",
            "legend.frameon": False,
            "figure.facecolor": "white",
        }
    )
    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def accuracy_scatter(rows: Sequence[Row], x: str) -> bytes:
    """x: "params" (count, log scale) or "time" (hours of training, log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    # (row, x, accuracy) of each row that has both, x > 0 for the log scale.
    points = [
        (r, v, acc)
        for r in rows
        if (acc := r.accuracy) is not None and (v := _x(r, x)) is not None and v > 0
    ]
    if not points:
        _empty(ax, "no finished runs yet")
        return _png(fig)
    for r, v, acc in points:
        colour = VERDICT_COLOURS.get(r.verdict_kind, VERDICT_COLOURS[""])
        if r.reference is not None:
            ref_x = _x_ref(r, x) or v
            ax.plot([v, ref_x], [acc, r.reference], color=colour, lw=0.8, alpha=0.5, zorder=1)
            ax.scatter(
                [ref_x],
                [r.reference],
                marker="D",
                s=34,
                facecolors="white",
                edgecolors=colour,
                linewidths=1.2,
                zorder=2,
            )
        ax.errorbar(
            [v],
            [acc],
            yerr=[r.accuracy_std or 0.0],
            fmt="o",
            ms=6,
            color=colour,
            ecolor=colour,
            elinewidth=1,
            capsize=2,
            zorder=3,
        )
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.margins(x=0.12, y=0.08)
    # Ticks at 1-2-5 per decade, labelled plainly (62k, 0.5M; 0.5 h, 2 h), no 6x10^4.
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if x == "params":
        ax.set_xlabel("parameters")
        ax.xaxis.set_major_formatter(FuncFormatter(_count_label))
        ax.set_title("Accuracy vs. parameters")
    else:
        ax.set_xlabel("training time (hours)")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title("Accuracy vs. training time")
    ax.set_ylabel("test accuracy (%)")
    _legend(ax, [r for r, _, _ in points])
    if len(points) <= _MAX_LABELS:
        refs = [
            ("", _x_ref(r, x) or v, ref) for r, v, _ in points if (ref := r.reference) is not None
        ]
        _place_labels(fig, ax, [(r.network, v, acc) for r, v, acc in points], refs)
    return _png(fig)


def learning_curves(
    rows: Sequence[Row], curves: Mapping[str, Sequence[tuple[int, float]]]
) -> bytes:
    """One panel per grid cell: val_accuracy (%) per epoch of each of its runs."""
    plt = _pyplot()
    panels = [r for r in rows if any(curves.get(i) for i in r.run_ids)][:MAX_PANELS]
    if not panels:
        fig, ax = plt.subplots(figsize=(6.4, 2.4))
        _empty(ax, "no epochs logged yet")
        return _png(fig)
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.3 * cols, 2.9 * nrows), squeeze=False)
    palette = plt.get_cmap("tab10").colors
    for ax, row in zip(axes.flat, panels, strict=False):
        for k, run_id in enumerate(row.run_ids):
            points = curves.get(run_id) or []
            if points:
                ax.plot(
                    [s + 1 for s, _ in points],
                    [100 * v for _, v in points],
                    lw=1.3,
                    color=palette[k % len(palette)],
                    alpha=0.9,
                )
        if row.reference is not None:
            ax.axhline(row.reference, color="#37474f", lw=1, ls="--")
            ax.annotate(
                f"published {row.reference:.2f}",
                xy=(0.02, row.reference),
                xycoords=("axes fraction", "data"),
                xytext=(0, 3),
                textcoords="offset points",
                fontsize=7,
                color="#37474f",
            )
        state = "" if row.state == TrialState.FINISHED else f" ({row.state.lower()})"
        ax.set_title(f"{row.network}{state}", loc="left")
        ax.set_xlabel("epoch")
        ax.set_ylabel("val accuracy (%)")
        if row.epochs:
            ax.set_xlim(0, row.epochs + 1)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    if len(rows) > MAX_PANELS:
        fig.suptitle(
            f"the first {MAX_PANELS} of {len(rows)} grid cells",
            x=0.01,
            ha="left",
            fontsize=9,
            color="#616161",
        )
    fig.tight_layout()
    return _png(fig)


# Where a label may go around its point (offset in points, horizontal alignment), nearest
# first: right, left, above, below, then the diagonals further out (with a leader line).
_SPOTS = [
    ((6, 3), "left"),
    ((6, -10), "left"),
    ((-6, 3), "right"),
    ((-6, -10), "right"),
    ((0, 8), "center"),
    ((0, -16), "center"),
] + [
    ((dx * r, dy * r), "left" if dx > 0 else "right")
    for r in (14, 24, 36, 50)
    for dx, dy in ((1, 1), (1, -1.4), (-1, 1), (-1, -1.4))
]


def _place_labels(
    fig: Any,
    ax: Any,
    items: list[tuple[str, float, float]],
    extra: Sequence[tuple[str, float, float]] = (),
) -> None:
    """Label each point where its text overlaps no other label, no point, nor the legend,
    and stays inside the axes: the first free spot of _SPOTS, else the least crowded one.
    `extra`: other markers to keep clear of (the published values)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    taken = [legend.get_window_extent(renderer)] if legend else []
    for _, x, y in [*items, *extra]:  # the markers themselves, ~10 px boxes
        px, py = ax.transData.transform((x, y))
        taken.append(_box(px - 5, py - 5, px + 5, py + 5))
    for text, x, y in sorted(items, key=lambda t: -t[2]):
        best, best_cost = None, math.inf
        for (dx, dy), ha in _SPOTS:
            far = abs(dx) > 10
            label = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                fontsize=7.5,
                color="#263238",
                arrowprops={"arrowstyle": "-", "color": "#90a4ae", "lw": 0.6} if far else None,
            )
            box = label.get_window_extent(renderer)
            cost = sum(_overlap(box, t) for t in taken) + 1e4 * (not _inside(box, frame))
            if cost < best_cost:
                if best is not None:
                    best.remove()
                best, best_cost = label, cost
            else:
                label.remove()
            if cost == 0:
                break
        if best is not None:
            taken.append(best.get_window_extent(renderer))


def _box(x0: float, y0: float, x1: float, y1: float) -> Any:
    from matplotlib.transforms import Bbox

    return Bbox([[x0, y0], [x1, y1]])


def _overlap(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _inside(box: Any, frame: Any) -> bool:
    return box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1


def _x(r: Row, x: str) -> float | None:
    if x == "params":
        return float(r.params) if r.params else None
    return r.train_time_s / 3600 if r.train_time_s else None


def _x_ref(r: Row, x: str) -> float | None:
    if x == "params":
        return float(r.reference_params) if r.reference_params else None
    return r.reference_time_s / 3600 if r.reference_time_s else None


def _count_label(v: float, _: Any) -> str:
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    return f"{v / 1e3:g}k" if v >= 1e3 else f"{v:g}"


def _legend(ax: Any, rows: Sequence[Row]) -> None:
    """Only the kinds of marker the plot shows."""
    from matplotlib.lines import Line2D

    kinds = {r.verdict_kind for r in rows}
    labels = {"": "no reference"}
    handles = [
        Line2D([], [], marker="o", ls="", color=c, label=labels.get(k, k))
        for k, c in VERDICT_COLOURS.items()
        if k in kinds
    ]
    if any(r.reference is not None for r in rows):
        handles.append(
            Line2D(
                [],
                [],
                marker="D",
                ls="",
                markerfacecolor="white",
                markeredgecolor="#37474f",
                color="#37474f",
                label="published",
            )
        )
    # Outside the axes, framed, with a title: a legend marker inside the data area reads
    # as one more data point.
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        frameon=True,
        title="marker",
        title_fontsize=7.5,
        fontsize=7.5,
    )


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#757575")
    ax.set_axis_off()
