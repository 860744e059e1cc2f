"""PNG charts of the results, with matplotlib (imported only here).

- ``ops.png``: one panel per phase, operations per second of every store
  (log scale; hubkv fs-lite and raw sqlite3 highlighted, ratios to raw
  printed on the bars);
- ``scaling.png``: rates and bytes per key against the number of keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .stores import HUBKV, RAW, STORE_NAMES
from .workload import PHASES

__all__ = ["draw"]

_COLORS = dict(
    zip(
        STORE_NAMES,
        ["#d62728", "#1f77b4", "#ff9896", "#aec7e8", "#2ca02c", "#9467bd", "#8c564b"],
        strict=True,
    )
)


def draw(results: Mapping[str, Any], summary: Mapping[str, Any], folder: Path) -> list[Path]:
    """Write the charts of the sections present; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    written = []
    if "phases" in summary:
        written.append(_ops(results, summary, folder / "ops.png"))
    if "scaling" in summary:
        written.append(_scaling(results, summary, folder / "scaling.png"))
    return written


def _ops(results: Mapping[str, Any], summary: Mapping[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    stores = results["run"]["stores"]
    phases = [phase for phase in PHASES if phase.id in summary["phases"]]
    columns = 2
    rows = math.ceil(len(phases) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(13, 2.1 * rows + 1), squeeze=False)
    for ax, phase in zip(axes.flat, phases, strict=False):
        per_store = summary["phases"][phase.id]
        shown = [s for s in stores if per_store.get(s, {}).get("median")]
        rates = [per_store[s]["median"] for s in shown]
        bars = ax.barh(range(len(shown)), rates, color=[_COLORS.get(s, "grey") for s in shown])
        ax.set_yticks(range(len(shown)), shown, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_title(f"{phase.label} ({phase.unit})", fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=7)
        for bar, store in zip(bars, shown, strict=True):
            ratio = per_store[store]["vs_raw"]
            text = f"{per_store[store]['median']:,.0f}"
            if store != RAW and ratio is not None:
                text += f"  ({ratio:.2f}x raw)"
            weight = "bold" if store in (HUBKV, RAW) else "normal"
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                " " + text,
                va="center",
                fontsize=7,
                fontweight=weight,
            )
        ax.set_xlim(right=max(rates) * 30)
    for ax in list(axes.flat)[len(phases) :]:
        ax.axis("off")
    sizes = results["run"]["sizes"]
    figure.suptitle(
        f"hubkv benchmarks: {sizes['keys']:,} keys, median of {sizes['repetitions']} "
        f"interleaved repetitions ({results['machine']['cores']} cores, "
        f"{results['machine']['cpu']})",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _scaling(results: Mapping[str, Any], summary: Mapping[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    from .scaling import SCALING_PHASES

    sizes = results["scaling"]["sizes"]
    panels: list[tuple[str, str, Mapping[str, Mapping[str, float | None]], bool]] = [
        (label, unit, summary["scaling"][phase], phase in ("keys10", "clear10"))
        for phase, (label, unit) in SCALING_PHASES.items()
    ]
    panels.append(
        ("bytes per key on disk", "bytes", results["scaling"]["disk_bytes_per_key"], False)
    )
    figure, axes = plt.subplots(2, 3, figsize=(13, 7.5), squeeze=False)
    for ax, (label, unit, per_store, as_latency) in zip(axes.flat, panels, strict=False):
        for store, per_size in per_store.items():
            points = [(size, per_size.get(str(size))) for size in sizes]
            xs = [size for size, y in points if y]
            ys = [(1000 / y if as_latency else y) for _, y in points if y]
            if not xs:
                continue
            ax.plot(
                xs,
                ys,
                marker="o",
                label=store,
                color=_COLORS.get(store, "grey"),
                linewidth=2.5 if store == HUBKV else 1.2,
            )
        ax.set_xscale("log")
        ax.set_yscale("linear" if unit == "bytes" else "log")
        ax.set_xlabel("keys in the store", fontsize=8)
        ax.set_ylabel("ms per call" if as_latency else unit, fontsize=8)
        ax.set_title(label + (" (lower is better)" if as_latency else ""), fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[-1].axis("off")
    axes.flat[-1].legend(handles, labels, loc="center", fontsize=9)
    figure.suptitle("hubkv benchmarks: how costs grow with the number of keys", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
