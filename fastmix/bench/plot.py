"""``python -m fastmix bench --plot FILE.png``: the bench table as bar charts, one panel per
operation (their times differ by orders of magnitude), each bar labelled with its median and, for
fastmix, how many times faster than naive it is. matplotlib is optional (``fastmix[plot]``)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

COLOURS = {"fastmix": "#1f77b4", "naive": "#d62728", "peer": "#ff7f0e", "floor": "#7f7f7f", "other": "#2ca02c"}
REFERENCE_COLOUR = "#9ecae1"  # fastmix's torch backend: the plain-torch reference, not a fast path


def matplotlib_missing() -> Optional[str]:
    """None when matplotlib imports, else what to do about it."""
    try:
        import matplotlib  # noqa: F401  (checked before the timing, so a missing one is said at once)
    except ModuleNotFoundError as exc:
        if exc.name == "matplotlib":
            return 'matplotlib is not installed; install it with: pip install matplotlib  (or: pip install "fastmix[plot]")'
        return f"matplotlib failed to import ({exc}); reinstall it: pip install --force-reinstall matplotlib"
    except Exception as exc:  # noqa: BLE001
        return f"matplotlib failed to import ({type(exc).__name__}: {exc}); reinstall it: pip install --force-reinstall matplotlib"
    return None


def bar_colour(row) -> str:
    """fastmix blue (the torch reference backend paler), naive red, peers orange, floors grey."""
    for kind in ("fastmix", "naive", "peer", "floor"):
        if row.implementation.startswith(kind):
            if kind == "fastmix" and row.backend == "torch":
                return REFERENCE_COLOUR
            return COLOURS[kind]
    return COLOURS["other"]


def bar_label(row) -> str:
    """The implementation, with the backend for fastmix rows and wherever it is not plain torch."""
    if row.implementation == "fastmix":
        return f"fastmix [{row.backend}{' reference' if row.backend == 'torch' else ''}]"
    return row.implementation + (f" [{row.backend}]" if row.backend != "torch" else "")


def plot_rows(rows: Sequence, path: str, title: str, columns: int = 2) -> None:
    """Draw ``rows`` (fastmix.bench.timing.Row) to the PNG file ``path``, one panel per operation."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    by_operation: Dict[str, List] = {}
    for row in rows:
        by_operation.setdefault(row.operation, []).append(row)
    panels = list(by_operation.items())
    columns = min(columns, len(panels))
    panel_rows = -(-len(panels) // columns)
    tallest = max(len(group) for _, group in panels)
    figure = Figure(figsize=(8 * columns, panel_rows * (0.42 * tallest + 1.1) + 0.8), layout="constrained")
    for k, (operation, group) in enumerate(panels):
        axes = figure.add_subplot(panel_rows, columns, k + 1)
        labels = [bar_label(r) for r in group]
        values = [r.median_ms for r in group]
        longest = max(values)
        axes.barh(range(len(group)), values, color=[bar_colour(r) for r in group])
        axes.set_yticks(range(len(group)), labels, fontsize=8)
        axes.invert_yaxis()  # the table's order, top to bottom
        axes.set_title(operation, fontsize=10, loc="left")
        axes.set_xlim(0, longest * 1.02)
        for y, r in enumerate(group):
            text = f"{r.median_ms:.2f} ms"
            if r.implementation == "fastmix":
                text += f", {r.times_faster_than_naive:.1f}x faster than naive, {r.ratio_to_floor:.2f}x floor"
            if r.median_ms > 0.55 * longest:  # long bars carry their label inside
                axes.text(r.median_ms, y, text + " ", va="center", ha="right", fontsize=8, color="white")
            else:
                axes.text(r.median_ms, y, " " + text, va="center", ha="left", fontsize=8)
        axes.tick_params(axis="x", labelsize=8)
        axes.set_xlabel("median ms per batch (shorter is faster)", fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=100)
