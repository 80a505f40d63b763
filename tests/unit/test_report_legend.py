"""The scatter plots' legend sits outside the data area, framed: its "no reference" marker
must not read as one more data point."""

from __future__ import annotations

from orchestrator.report import plots
from orchestrator.report.records import RunRecord
from orchestrator.report.table import build_table


def _rows():  # type: ignore[no-untyped-def]
    def rec(name: str, ref: str | None) -> RunRecord:
        return RunRecord(
            run_id=name, trial_key=name, name=name, model="lenet5", state="FINISHED",
            gpu="CPU", batch_size=64, epochs=2, epochs_done=2, params=62006,
            train_time_s=60.0, test_accuracy=0.9,
            reference={"accuracy": ref} if ref else {},
        )  # fmt: skip

    return build_table([rec("a", None), rec("b", "91.0")])


def test_legend_outside_the_axes() -> None:
    plt = plots._pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    rows = _rows()
    for r in rows:
        ax.scatter([r.params], [r.accuracy])
    plots._legend(ax, rows)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend()
    box, frame = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert box.x0 >= frame.x1  # right of the data area, not over it
    assert legend.get_frame_on()
    labels = [t.get_text() for t in legend.get_texts()]
    assert "no reference" in labels and "published" in labels
    assert plots.accuracy_scatter(rows, "params")[:4] == b"\x89PNG"
    plt.close(fig)
